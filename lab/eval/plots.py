"""Pictures of a model's answers: ground truth, prediction and error, in m/s.

Truth and prediction share one colour scale (the geometry's velocity range) so they can be
compared by eye; the error uses a diverging scale symmetric about zero, so over- and
under-estimates read as different colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a training server or in CI
import matplotlib.pyplot as plt
import numpy as np

from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["plot_predictions"]


def plot_predictions(
    truths: Sequence[np.ndarray],
    preds: Sequence[np.ndarray],
    out: Path | str,
    labels: Sequence[str] = (),
    title: str = "",
    geometry: Geometry = CONTRACT,
) -> None:
    """One row per sample (maps ``[nz, nx]`` or ``[1, nz, nx]`` in m/s): truth, prediction,
    prediction minus truth; each panel with a colour bar in m/s."""
    rows = len(truths)
    fig, axes = plt.subplots(rows, 3, figsize=(13, 3.6 * rows), squeeze=False)
    extent = (0, geometry.nx * geometry.spacing_m, geometry.nz * geometry.spacing_m, 0)
    for row, (truth, pred) in enumerate(zip(truths, preds, strict=True)):
        truth, pred = np.asarray(truth).squeeze(), np.asarray(pred).squeeze()
        error = pred - truth
        limit = float(np.abs(error).max()) or 1.0
        label = labels[row] if row < len(labels) else f"sample {row}"
        panels = (
            (truth, "viridis", geometry.v_min, geometry.v_max, f"{label}: truth"),
            (pred, "viridis", geometry.v_min, geometry.v_max, "prediction"),
            (error, "RdBu_r", -limit, limit, f"error (MAE {np.abs(error).mean():.0f} m/s)"),
        )
        for ax, (image, cmap, vmin, vmax, name) in zip(axes[row], panels, strict=True):
            shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, extent=extent)
            ax.set(xlabel="distance (m)", ylabel="depth (m)", title=name)
            fig.colorbar(shown, ax=ax, label="m/s")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
