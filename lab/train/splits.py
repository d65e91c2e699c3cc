"""Opening dataset folders and holding out a validation split that training never sees.

The split is drawn **per folder** (each folder gives ``val_fraction`` of its samples, at
least one), so a run over several families validates on every family, not on whichever one
a global shuffle happened to favour. It depends only on the seed, the folder order and the
folder sizes: the same command always holds out the same samples, and a resumed run
validates on exactly the samples it validated on before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch.utils.data import ConcatDataset, Subset

from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.errors import ConfigError, DataError
from epic.shared.geometry import CONTRACT, Geometry

if TYPE_CHECKING:
    import torch

__all__ = ["Split", "open_folders", "split_folders"]


def open_folders(
    roots: Sequence[Path | str], geometry: Geometry = CONTRACT
) -> list[OpenFWIDataset]:
    """One raw (un-normalized) reader per folder; a folder without samples is an error,
    since a typo in a path would otherwise train on less data than the user thinks."""
    if not roots:
        raise ConfigError("no dataset folder given")
    datasets = []
    for root in roots:
        dataset = OpenFWIDataset(root, geometry=geometry)
        if len(dataset) == 0:
            raise DataError(root, "holds no samples")
        datasets.append(dataset)
    return datasets


@dataclass
class Split:
    train: Subset
    val: Subset
    val_per_folder: list[int]


def split_folders(datasets: Sequence[OpenFWIDataset], val_fraction: float, seed: int) -> Split:
    """Hold out ``val_fraction`` of each folder (rounded, at least one sample)."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(
            f"val_fraction={val_fraction}: must lie strictly between 0 and 1", "--val-fraction"
        )
    train_idx: list[int] = []
    val_idx: list[int] = []
    val_counts: list[int] = []
    offset = 0
    for k, dataset in enumerate(datasets):
        n = len(dataset)
        n_val = max(1, round(n * val_fraction))
        if n - n_val < 1:
            raise DataError(
                dataset.summary.files[0].pair.data.parent,
                f"{n} sample(s): too few to hold out {n_val} for validation and still train",
            )
        order = np.random.default_rng([seed, k, n]).permutation(n) + offset
        val_idx += sorted(order[:n_val].tolist())
        train_idx += sorted(order[n_val:].tolist())
        val_counts.append(n_val)
        offset += n
    joined: ConcatDataset[tuple[torch.Tensor, torch.Tensor]] = ConcatDataset(datasets)
    return Split(Subset(joined, train_idx), Subset(joined, val_idx), val_counts)
