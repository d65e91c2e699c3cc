"""Finding data/model file pairs in an OpenFWI-layout folder, and checking their headers.

Two namings are read:

* the Vel family's: ``DIR/data/dataK.npy`` with ``DIR/model/modelK.npy``;
* the Fault family's: ``seisK_*.npy`` with ``velK_*.npy`` (same suffix), either directly in
  ``DIR`` or in ``DIR/data`` and ``DIR/model``.

Only headers are read here (``np.load(mmap_mode="r")``), so discovering a dataset larger than
memory costs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epic.shared.errors import DataError
from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["FilePair", "discover_pairs", "open_pair"]

_VEL = (re.compile(r"^data(.*)\.npy$"), "model{}.npy")
_FAULT = (re.compile(r"^seis(.*)\.npy$"), "vel{}.npy")


@dataclass(frozen=True)
class FilePair:
    data: Path
    model: Path


def _natural_key(path: Path) -> list:
    """data2 before data10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _pairs_in(data_dir: Path, model_dir: Path) -> list[FilePair]:
    pairs = []
    for path in sorted(data_dir.glob("*.npy"), key=_natural_key):
        for pattern, partner in (_VEL, _FAULT):
            match = pattern.match(path.name)
            if match:
                model = model_dir / partner.format(match.group(1))
                if not model.is_file():
                    raise DataError(path, f"has no matching model file {model.name} in {model_dir}")
                pairs.append(FilePair(path, model))
                break
    return pairs


def discover_pairs(root: Path | str) -> list[FilePair]:
    """Every data/model pair under ``root``, in natural file order."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such folder")
    if not root.is_dir():
        raise DataError(root, "is not a folder")
    if (root / "data").is_dir() and not (root / "model").is_dir():
        raise DataError(root, "has a data/ folder but no model/ folder beside it")
    pairs: list[FilePair] = []
    if (root / "data").is_dir() and (root / "model").is_dir():
        pairs += _pairs_in(root / "data", root / "model")
    pairs += _pairs_in(root, root)  # the Fault family keeps seis/vel side by side
    if not pairs:
        raise DataError(
            root,
            "no data files found (expected data/dataK.npy + model/modelK.npy, "
            "or seisK_*.npy + velK_*.npy)",
        )
    return pairs


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"not a readable .npy file ({exc})") from exc


def _check(path: Path, array: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    if array.dtype != np.float32:
        raise DataError(path, f"{what} dtype is {array.dtype}, expected float32")
    if array.ndim != 1 + len(shape) or tuple(array.shape[1:]) != shape:
        want = ", ".join(str(s) for s in shape)
        raise DataError(path, f"{what} shape is {list(array.shape)}, expected [n, {want}]")


def open_pair(pair: FilePair, geometry: Geometry = CONTRACT) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map both files of ``pair`` and check dtype, shape and counts (headers only)."""
    data, model = _load(pair.data), _load(pair.model)
    _check(pair.data, data, geometry.data_shape, "data")
    _check(pair.model, model, geometry.model_shape, "model")
    if len(data) != len(model):
        raise DataError(
            pair.data, f"holds {len(data)} samples but {pair.model.name} holds {len(model)}"
        )
    return data, model
