"""Pictures for people: velocity maps with a colour bar in m/s, shot gathers in seconds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display in the field or in CI
import matplotlib.pyplot as plt
import numpy as np

from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["plot_samples"]


def plot_samples(
    samples: Sequence[tuple[np.ndarray, np.ndarray]],
    out: Path | str,
    shot: int = 2,
    title: str = "",
    geometry: Geometry = CONTRACT,
) -> None:
    """One row per sample: its velocity map and the gather of ``shot``."""
    rows = len(samples)
    fig, axes = plt.subplots(rows, 2, figsize=(9, 3.6 * rows), squeeze=False)
    width = geometry.nx * geometry.spacing_m
    depth = geometry.nz * geometry.spacing_m
    duration = geometry.nt * geometry.dt_s
    for row, (data, model) in enumerate(samples):
        ax = axes[row, 0]
        image = ax.imshow(
            model[0],
            cmap="viridis",
            vmin=geometry.v_min,
            vmax=geometry.v_max,
            extent=(0, width, depth, 0),
        )
        ax.set(xlabel="distance (m)", ylabel="depth (m)", title="velocity")
        fig.colorbar(image, ax=ax, label="m/s")
        ax = axes[row, 1]
        gather = data[shot]
        clip = float(np.quantile(np.abs(gather), 0.98)) or 1.0
        ax.imshow(
            gather,
            cmap="gray",
            aspect="auto",
            vmin=-clip,
            vmax=clip,
            extent=(0, width, duration, 0),
        )
        src = geometry.source_columns[shot] * geometry.spacing_m
        ax.set(
            xlabel="receiver position (m)",
            ylabel="time (s)",
            title=f"shot {shot} (source at {src:.0f} m)",
        )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
