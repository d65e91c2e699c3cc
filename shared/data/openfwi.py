"""A memory-mapped reader for OpenFWI-layout datasets (one folder or several).

Samples are read lazily from ``np.load(mmap_mode="r")`` views, so a dataset larger than
memory trains. Velocity maps are small (20 kB a sample) and checked in full when the reader
opens; seismic data (1.4 MB a sample) is checked as each sample is read, or in full by
``scan`` (``epic data info``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from epic.shared.data.layout import FilePair, discover_pairs, open_pair
from epic.shared.data.normalization import Normalization
from epic.shared.errors import DataError
from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["DatasetSummary", "FileSummary", "OpenFWIDataset"]


@dataclass
class FileSummary:
    pair: FilePair
    samples: int
    data_min: float = float("nan")
    data_max: float = float("nan")
    v_min: float = float("nan")
    v_max: float = float("nan")


@dataclass
class DatasetSummary:
    files: list[FileSummary] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return sum(f.samples for f in self.files)

    def data_range(self) -> tuple[float, float]:
        return min(f.data_min for f in self.files), max(f.data_max for f in self.files)

    def velocity_range(self) -> tuple[float, float]:
        return min(f.v_min for f in self.files), max(f.v_max for f in self.files)


def _check_models(pair: FilePair, model: np.ndarray) -> tuple[float, float]:
    finite = np.isfinite(model).reshape(len(model), -1).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise DataError(pair.model, f"sample {bad} holds NaN or infinite velocities")
    low, high = float(model.min()), float(model.max())
    if low <= 0:
        bad = int(np.flatnonzero(model.reshape(len(model), -1).min(axis=1) <= 0)[0])
        raise DataError(pair.model, f"sample {bad} holds a velocity <= 0 ({low} m/s)")
    return low, high


class OpenFWIDataset(Dataset):
    """Samples from one or more OpenFWI-layout folders.

    Items are ``(data, velocity)`` tensors: ``[shots, time, receivers]`` and ``[1, nz, nx]``,
    normalized by ``normalization`` (raw amplitudes and m/s when it is ``None``). ``blocks``
    gives the device partition for per-shot scaling, as the edges compute it.
    """

    def __init__(
        self,
        roots: Path | str | Sequence[Path | str],
        normalization: Normalization | None = None,
        blocks: Sequence[range] | None = None,
        geometry: Geometry = CONTRACT,
    ) -> None:
        roots = [roots] if isinstance(roots, str | Path) else list(roots)
        if not roots:
            raise ValueError("no dataset folder given")
        self.normalization = normalization
        self.blocks = blocks
        self.geometry = geometry
        self._arrays: list[tuple[np.ndarray, np.ndarray]] = []
        self.summary = DatasetSummary()
        for root in roots:
            for pair in discover_pairs(root):
                data, model = open_pair(pair, geometry)
                if len(data) == 0:
                    continue
                v_min, v_max = _check_models(pair, model)
                self._arrays.append((data, model))
                self.summary.files.append(FileSummary(pair, len(data), v_min=v_min, v_max=v_max))
        self._offsets = np.cumsum([0] + [f.samples for f in self.summary.files]).tolist()

    def __len__(self) -> int:
        return self._offsets[-1]

    def _locate(self, index: int) -> tuple[int, int]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range for {len(self)} samples")
        file = bisect.bisect_right(self._offsets, index) - 1
        return file, index - self._offsets[file]

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` as float32 arrays in file units: data and velocity (m/s)."""
        file, local = self._locate(index)
        data, model = self._arrays[file]
        x = np.array(data[local], dtype=np.float32)
        if not np.isfinite(x).all():
            raise DataError(self.summary.files[file].pair.data, f"sample {local} holds NaN or inf")
        return x, np.array(model[local], dtype=np.float32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, v = self.raw(index)
        data, velocity = torch.from_numpy(x), torch.from_numpy(v)
        if self.normalization is None:
            return data, velocity
        return (self.normalization.data(data, self.blocks), self.normalization.velocity(velocity))

    def scan(self, chunk: int = 64) -> Iterator[int]:
        """Read every data sample once: fills the summary's amplitude ranges and raises
        ``DataError`` at the first NaN or inf. Yields the samples done so far (for a bar)."""
        for (data, _), info in zip(self._arrays, self.summary.files, strict=True):
            low, high = np.inf, -np.inf
            for start in range(0, len(data), chunk):
                block = np.asarray(data[start : start + chunk])
                finite = np.isfinite(block).reshape(len(block), -1).all(axis=1)
                if not finite.all():
                    bad = start + int(np.flatnonzero(~finite)[0])
                    raise DataError(info.pair.data, f"sample {bad} holds NaN or inf")
                low, high = min(low, float(block.min())), max(high, float(block.max()))
                yield len(block)
            info.data_min, info.data_max = low, high
