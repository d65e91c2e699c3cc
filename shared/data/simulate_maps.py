"""Forward-modelling velocity maps someone else made (OpenFWI's, a user's) into our layout.

``epic data simulate --maps SOURCE`` reads velocity maps only (OpenFWI publishes them
apart from its seismic data, and OpenFWI's own generator's amplitudes differ from
deepwave's) and writes the contract's shot gathers for exactly those maps:
``OUT/data/dataK.npy`` with ``OUT/model/modelK.npy``, K taken from the source file's name
(``vmodel11.npy`` -> ``data11.npy``), one output pair per source file.

SOURCE is a folder of ``modelK.npy`` / ``vmodelK.npy`` / ``velK_*.npy`` files (or such a
folder's ``model/`` sub-folder), one such file, or a zip of them. Every source file is
checked before anything is simulated; a rerun skips the pairs already written, so an
interrupted run resumes where it stopped (a data file is renamed into place only when
complete).
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from epic.shared.errors import DataError
from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["MapFile", "MapsResult", "find_map_files", "simulate_maps"]

METADATA = "epic-dataset.json"
# What a velocity map may hold before the forward model refuses it: water (1,480 m/s) to
# fast carbonate or basement (about 6,000 m/s), with room either side for odd real maps.
V_LOWEST, V_HIGHEST = 500.0, 6000.0
_NAME = re.compile(r"^(?:v?model|vel)(\d+)(?:_.*)?\.npy$")


@dataclass(frozen=True)
class MapFile:
    """One source file of maps: where it is, and the number K its output pair takes."""

    label: str  # a path, or zip:member, for messages
    number: str
    path: Path | None = None
    zip_path: Path | None = None
    member: str | None = None

    def load(self) -> np.ndarray:
        try:
            if self.zip_path is None:
                assert self.path is not None  # a file of its own: made with its path
                return np.load(self.path, allow_pickle=False)
            assert self.member is not None  # in a zip: made with its member's name
            with zipfile.ZipFile(self.zip_path) as z:
                return np.load(io.BytesIO(z.read(self.member)), allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(self.label, f"not a readable .npy file ({exc})") from exc


@dataclass
class MapsResult:
    out: Path
    maps: int
    files: int
    skipped: int
    seconds: float
    v_min: float
    v_max: float


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _number(name: str, fallback: int) -> str:
    match = _NAME.match(Path(name).name)
    return match.group(1) if match else str(fallback)


def _numbered(names: list[str]) -> list[tuple[str, str]]:
    names = sorted(names, key=lambda n: _natural(Path(n).name))
    return [(n, _number(n, k + 1)) for k, n in enumerate(names)]


def find_map_files(source: Path | str) -> list[MapFile]:
    """The velocity-map files of ``source`` (folder, ``.npy`` file or ``.zip``), in order."""
    source = Path(source)
    if not source.exists():
        raise DataError(source, "no such file or folder")
    if source.is_file() and source.suffix == ".npy":
        return [MapFile(str(source), _number(source.name, 1), path=source)]
    if source.is_file() and source.suffix == ".zip":
        try:
            with zipfile.ZipFile(source) as z:
                members = [m for m in z.namelist() if m.endswith(".npy") and "__MACOSX" not in m]
        except zipfile.BadZipFile as exc:
            raise DataError(source, f"not a readable zip ({exc})") from exc
        if not members:
            raise DataError(source, "the zip holds no .npy files")
        return [
            MapFile(f"{source}:{m}", k, zip_path=source, member=m) for m, k in _numbered(members)
        ]
    if source.is_dir():
        folder = source / "model" if (source / "model").is_dir() else source
        names = [p.name for p in folder.glob("*.npy") if _NAME.match(p.name)]
        if not names:
            raise DataError(folder, "no velocity-map files (modelK.npy, vmodelK.npy or velK_*.npy)")
        return [MapFile(str(folder / n), k, path=folder / n) for n, k in _numbered(names)]
    raise DataError(source, "expected a folder, a .npy file or a .zip of .npy files")


def check_maps(maps: np.ndarray, label: str, geometry: Geometry = CONTRACT) -> np.ndarray:
    """``maps`` as float32 ``[n, 1, nz, nx]``, or a :class:`DataError` saying what is wrong."""
    if not np.issubdtype(maps.dtype, np.floating):
        raise DataError(label, f"dtype is {maps.dtype}, expected float32 velocities in m/s")
    shape = (geometry.nz, geometry.nx)
    if maps.ndim == 3 and tuple(maps.shape[1:]) == shape:
        maps = maps[:, None]
    if maps.ndim != 4 or tuple(maps.shape[1:]) != (1, *shape):
        raise DataError(
            label, f"shape is {list(maps.shape)}, expected [n, 1, {shape[0]}, {shape[1]}]"
        )
    if len(maps) == 0:
        raise DataError(label, "holds no maps")
    bad = ~np.isfinite(maps)
    if bad.any():
        first = int(np.argwhere(bad.reshape(len(maps), -1).any(axis=1))[0, 0])
        raise DataError(label, f"map {first} holds NaN or infinite values")
    low, high = float(maps.min()), float(maps.max())
    if low < V_LOWEST or high > V_HIGHEST:
        raise DataError(
            label,
            f"velocities span {low:.0f}-{high:.0f} m/s, outside {V_LOWEST:.0f}-{V_HIGHEST:.0f} "
            "(are they in m/s?)",
        )
    return np.ascontiguousarray(maps, dtype=np.float32)


def _done(out: Path, number: str, n: int) -> bool:
    data, model = out / "data" / f"data{number}.npy", out / "model" / f"model{number}.npy"
    if not (data.is_file() and model.is_file()):
        return False
    try:
        return len(np.load(data, mmap_mode="r")) == n == len(np.load(model, mmap_mode="r"))
    except (ValueError, OSError, EOFError):
        return False


def simulate_maps(
    source: Path | str,
    out: Path | str,
    batch: int = 16,
    device: str | None = None,
    progress: bool = True,
    geometry: Geometry = CONTRACT,
    propagator: str = "auto",
) -> MapsResult:
    """Forward-model every map of ``source`` into ``out`` (OpenFWI Vel layout), resuming.
    ``propagator``: ``epic.shared.physics.engine``'s choice (deepwave where installed)."""
    from epic.shared.physics.engine import shot_simulator  # torch and deepwave: only here

    if batch < 1:
        raise ValueError(f"batch={batch}: must be >= 1")
    files = find_map_files(source)
    simulate_shots = shot_simulator(propagator, device or "cpu", geometry)
    numbers = [f.number for f in files]
    if len(set(numbers)) != len(numbers):
        raise DataError(source, "two files map to the same output number: rename one")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "exists and is not a folder")
    # Check everything first: a bad file found after an hour of simulation costs the hour.
    loaded = [check_maps(f.load(), f.label, geometry) for f in files]
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "model").mkdir(parents=True, exist_ok=True)
    todo = [(f, m) for f, m in zip(files, loaded, strict=True) if not _done(out, f.number, len(m))]
    started = time.perf_counter()
    bar = tqdm(
        total=sum(len(m) for _, m in todo), unit="map", desc="simulate", disable=not progress
    )
    for f, maps in todo:
        data_path = out / "data" / f"data{f.number}.npy"
        partial = data_path.parent / f".{data_path.name}.partial"
        data = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.float32, shape=(len(maps), *geometry.data_shape)
        )
        for start in range(0, len(maps), batch):
            chunk = maps[start : start + batch]
            data[start : start + len(chunk)] = simulate_shots(chunk)
            bar.update(len(chunk))
        data.flush()
        del data
        np.save(out / "model" / f"model{f.number}.npy", maps)
        os.replace(partial, data_path)  # the data file last: its presence means done
    bar.close()
    seconds = time.perf_counter() - started
    total = sum(len(m) for m in loaded)
    (out / METADATA).write_text(
        json.dumps(
            {
                "generator": "epic data simulate --maps",
                "source": str(Path(source).resolve()),
                "files": [f.label for f in files],
                "maps": total,
                "geometry": geometry.to_dict(),
            },
            indent=2,
        )
        + "\n"
    )
    return MapsResult(
        out,
        total,
        len(files),
        len(files) - len(todo),
        seconds,
        min(float(m.min()) for m in loaded),
        max(float(m.max()) for m in loaded),
    )
