"""``epic train --init CHECKPOINT``: a new run that starts from a trained model's weights.

A fine-tune has its own optimizer, warm-up and schedule; only the weights carry over. The
checkpoint must be of the model being trained (name, devices, architecture, geometry and
normalization). A wire code (``epic compress``) is fitted after training, not trained, so
its directions are left behind: the run trains the tokens, and ``epic compress`` fits a
code to the result again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from epic.shared.errors import ConfigError
from epic.shared.models.base import FWIModel
from epic.shared.models.checkpoint import load_checkpoint

__all__ = ["warm_start"]

# What decides a run's validation split: if the checkpoint's run had other settings, some
# of this run's validation maps may be maps it trained on.
_SPLIT_KEYS = ("data", "maps", "families", "maps_limit", "seed", "val_fraction")


def _wire_key(key: str) -> bool:
    return key.startswith("unwire.") or ".wire." in key


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def warm_start(
    model: FWIModel, init: Path, train: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    """Load ``init``'s weights into ``model`` (built from this run's settings, ``train`` as
    ``TrainConfig.as_dict`` gives them); returns the provenance to keep with the new
    checkpoint: the path, the command that made it and the training it already had."""
    source, meta = load_checkpoint(init)  # DataError for a file that is not one
    have, want = source.config(), model.config()
    have["hparams"] = {**have["hparams"], "wire_dims": 0}
    for key in ("model", "n_devices", "hparams", "geometry", "normalization"):
        if _json(have[key]) != _json(want[key]):
            raise ConfigError(
                f"{init}: its {key} is {have[key]}, this run's {want[key]}; train the same "
                "model as the checkpoint, or leave --init out",
                "--init",
            )
    state = {k: v for k, v in source.state_dict().items() if not _wire_key(k)}
    model.load_state_dict(state)
    before = meta.get("train", {})
    moved = [k for k in _SPLIT_KEYS if k in before and _json(before[k]) != _json(train[k])]
    if moved:
        log(
            f"warning: {init} was trained with other {', '.join(moved)}: this run's "
            "validation maps may include maps it trained on"
        )
    earlier = meta.get("init") or {}
    seconds = float(meta.get("train_seconds", 0.0))
    log(f"starting from {init}'s weights ({seconds / 60:.1f} min of training)")
    return {
        "path": str(Path(init).resolve()),
        "command": meta.get("command", ""),
        "data": list(meta.get("data", [])),
        "train_seconds": seconds,
        # The whole chain's training, this run's excluded: what the model cost before it.
        "train_seconds_before": seconds + float(earlier.get("train_seconds_before", 0.0)),
        "init": earlier or None,
    }
