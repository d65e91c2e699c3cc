"""What a training run writes about itself: the checkpoint's provenance, the per-epoch line,
and the check that a resumed run is the run that was saved."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import torch

from epic.shared.errors import ConfigError

if TYPE_CHECKING:
    from epic.lab.train.config import TrainConfig
    from epic.lab.train.simulated_set import SimulatedSplit
    from epic.lab.train.splits import Split
    from epic.shared.models.base import FWIModel

__all__ = [
    "check_resumable",
    "checkpoint_meta",
    "epoch_line",
    "total_train_seconds",
    "trained_on",
]

# Settings that a resumed run must share with the saved one: the model itself, and what
# decides the validation split (or samples would move between training and validation)
# and the learning-rate schedule's step count.
_MUST_MATCH = ("data", "maps", "families", "maps_limit", "seed", "val_fraction", "batch_size")


def _same(a: Any, b: Any) -> bool:
    """Equal once tuples and lists are the same thing (checkpoints keep either)."""
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def check_resumable(state: dict[str, Any], model: FWIModel, cfg: TrainConfig) -> None:
    saved, now = state["config"], model.config()
    for key in ("model", "preset", "n_devices", "hparams", "normalization"):
        if not _same(saved[key], now[key]):
            raise ConfigError(
                f"cannot resume: the saved run has {key}={saved[key]}, this one {now[key]}"
            )
    # for states older than these
    defaults: dict[str, Any] = {"maps": [], "families": {}, "maps_limit": None}
    for key in _MUST_MATCH:
        saved_value = state["train"].get(key, defaults.get(key))
        if not _same(saved_value, cfg.as_dict()[key]):
            raise ConfigError(
                f"cannot resume: the saved run has {key}={saved_value}, "
                f"this one {cfg.as_dict()[key]}"
            )


def checkpoint_meta(
    cfg: TrainConfig,
    split: Split | SimulatedSplit,
    best: dict[str, Any],
    epoch: int,
    seconds: float,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    """Provenance stored with the best checkpoint: enough to rerun it and to trust it."""
    simulated = getattr(split, "sources", None)
    sim = cast("SimulatedSplit", split)  # read only where it has sources: a SimulatedSplit
    return {
        "command": cfg.command,
        "data": cfg.as_dict()["data"] or cfg.as_dict()["maps"],
        "seed": cfg.seed,
        "epochs": epoch,
        "epochs_planned": cfg.epochs,
        "train_seconds": seconds,
        "max_minutes": cfg.max_minutes,
        "val": {k: best[k] for k in ("ssim", "mae", "rmse", "loss", "samples")},
        "train_samples": len(split.train),
        "val_samples_per_folder": split.val_per_folder,
        "train": cfg.as_dict(),
        "history": history,
        "torch": str(torch.__version__),
        **(
            {
                "simulated": {
                    "sources": simulated,
                    "seconds": sim.seconds,
                    "maps_per_second": sim.maps_per_second,
                    "device": str(cfg.device),
                }
            }
            if simulated
            else {}
        ),
    }


def epoch_line(record: dict[str, Any], epochs: int, improved: bool) -> str:
    width = len(str(epochs))
    return (
        f"epoch {record['epoch']:>{width}}/{epochs}  train {record['train_loss']:.4f}  "
        f"val {record['val_loss']:.4f}  SSIM {record['val_ssim']:.4f}  "
        f"MAE {record['val_mae']:.1f} m/s  RMSE {record['val_rmse']:.1f} m/s  "
        f"lr {record['lr']:.2e}  {record['epoch_seconds']:.1f} s"
        + (f"  {record['samples_per_second']:.0f}/s" if "samples_per_second" in record else "")
        + ("  *best" if improved else "")
    )


def total_train_seconds(meta: dict[str, Any]) -> float | None:
    """A checkpoint's training time, with that of the checkpoints it was fine-tuned from."""
    if meta.get("train_seconds") is None:
        return None
    before = (meta.get("init") or {}).get("train_seconds_before", 0.0)
    return float(meta["train_seconds"]) + float(before)


def trained_on(meta: dict[str, Any]) -> list[str]:
    """Every folder a checkpoint learned from, the fine-tuned-from checkpoints' included."""
    folders = list(meta.get("data", []))
    init = meta.get("init")
    while init:
        folders += [d for d in init.get("data", []) if d not in folders]
        init = init.get("init")
    return folders
