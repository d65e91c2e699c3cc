"""Fidelity of a checkpoint on any OpenFWI-layout folders: SSIM, MAE and RMSE (m/s).

Every sample of every folder counts; figures are means of per-sample values
(``epic.shared.map_quality``), overall and per folder. With ``drop_devices=K`` each sample loses K
random devices (drawn once for the whole run from ``seed``, in sample order, so the same
command always drops the same devices whatever the batch size): the paper's robustness
test for late or dead devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from epic.lab.inference import Figures, normalize, resolve_device
from epic.lab.train.augment import drop_exactly
from epic.lab.train.runmeta import trained_on
from epic.lab.train.splits import open_folders
from epic.shared.errors import ConfigError
from epic.shared.models.checkpoint import load_checkpoint

__all__ = ["evaluate", "format_table"]


def evaluate(
    checkpoint: Path | str,
    data_dirs: Sequence[Path | str],
    drop_devices: int = 0,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "auto",
    plot: Path | str | None = None,
    plot_count: int = 4,
    progress: bool = False,
) -> dict[str, Any]:
    """Figures as a JSON-ready dict: ``ssim``, ``mae``, ``rmse``, ``samples``, and a row per
    folder under ``folders``. ``plot``: also draw truth, prediction and error for
    ``plot_count`` samples spread over the data."""
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size}: must be >= 1", "--batch-size")
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise ConfigError(str(exc), "--device") from exc
    model, meta = load_checkpoint(checkpoint, map_location="cpu")
    model.to(target)
    n = model.n_devices
    if not 0 <= drop_devices < n:
        raise ConfigError(
            f"cannot drop {drop_devices} of the model's {n} devices (need 0 <= K < {n})",
            "--drop-devices",
        )
    datasets = open_folders(data_dirs, geometry=model.geometry)
    total = sum(len(d) for d in datasets)
    present_all = drop_exactly(total, n, drop_devices, torch.Generator().manual_seed(seed))
    picks = set(np.linspace(0, total - 1, min(plot_count, total)).round().astype(int).tolist())
    shown: list[tuple[np.ndarray, np.ndarray, str]] = []
    learned_from = {str(Path(p).resolve()) for p in trained_on(meta)}
    overall, rows, start = Figures(), [], 0
    bar = tqdm(total=total, unit="sample", desc="evaluate", leave=False, disable=not progress)
    with torch.no_grad():
        for root, dataset in zip(data_dirs, datasets, strict=True):
            figures = Figures()
            for data, velocity in DataLoader(dataset, batch_size):
                data, velocity = data.to(target), velocity.to(target)
                present = present_all[start : start + len(data)].to(target)
                x, _ = normalize(model, data, velocity)
                pred = model.normalization.velocity_inverse(model(x, present).float())
                figures.add(pred, velocity)
                for i in sorted(picks & set(range(start, start + len(data)))):
                    shown.append(
                        (
                            velocity[i - start].cpu().numpy(),
                            pred[i - start].cpu().numpy(),
                            f"{Path(root).name} #{i}",
                        )
                    )
                start += len(data)
                bar.update(len(data))
            overall.sums = {k: overall.sums[k] + figures.sums[k] for k in overall.sums}
            overall.samples += figures.samples
            rows.append(
                {
                    "folder": str(root),
                    "samples": figures.samples,
                    **figures.means(),
                    "seen_in_training": str(Path(root).resolve()) in learned_from,
                }
            )
    bar.close()
    if plot is not None:
        from epic.lab.eval.plots import plot_predictions

        truths, preds, labels = zip(*shown, strict=True)
        dropped = f", {drop_devices} of {n} devices dropped" if drop_devices else ""
        plot_predictions(
            truths,
            preds,
            plot,
            labels,
            geometry=model.geometry,
            title=f"{Path(checkpoint).name} ({model.name}{dropped})",
        )
    return {
        **overall.means(),
        "samples": overall.samples,
        "checkpoint": str(checkpoint),
        "model": model.name,
        "preset": model.preset,
        "n_devices": n,
        "drop_devices": drop_devices,
        "seed": seed,
        "folders": rows,
    }


def format_table(result: dict[str, Any]) -> str:
    """The figures as a small fixed-width table, a row per folder and one for all."""
    rows = list(result["folders"])
    if len(rows) > 1:
        rows.append({"folder": "all", **{k: result[k] for k in ("samples", "ssim", "mae", "rmse")}})
    width = max(12, *(len(r["folder"]) for r in rows))
    lines = [f"{'folder':<{width}}  {'samples':>7}  {'SSIM':>6}  {'MAE m/s':>8}  {'RMSE m/s':>8}"]
    for r in rows:
        mark = "  (trained on this folder)" if r.get("seen_in_training") else ""
        lines.append(
            f"{r['folder']:<{width}}  {r['samples']:>7}  {r['ssim']:>6.4f}  "
            f"{r['mae']:>8.1f}  {r['rmse']:>8.1f}{mark}"
        )
    return "\n".join(lines)
