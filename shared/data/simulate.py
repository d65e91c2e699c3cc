"""Simulating a dataset to disk in OpenFWI's Vel layout.

``DIR/data/dataK.npy`` ``[n, 5, 1000, 70]`` and ``DIR/model/modelK.npy`` ``[n, 1, 70, 70]``,
float32, K from 1, ``per_file`` samples a file; plus ``DIR/epic-dataset.json`` recording how
it was made. Each velocity map comes from its own generator seeded by ``(seed, index)``, so
a dataset is the same whatever the batch size, and its first m samples are those of any
longer run with the same seed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import deepwave
import numpy as np
from tqdm import tqdm

from epic.shared.errors import DataError
from epic.shared.geometry import CONTRACT, Geometry
from epic.shared.physics.families import FAMILIES, generate_batch
from epic.shared.physics.forward import simulate_shots

__all__ = ["SimulationResult", "simulate_dataset"]

METADATA = "epic-dataset.json"


@dataclass
class SimulationResult:
    out: Path
    family: str
    samples: int
    files: int
    seconds: float
    data_absmax: float
    v_min: float
    v_max: float


def _prepare(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(out, "exists and is not a folder")
    existing = list(out.glob("data/*.npy")) + list(out.glob("model/*.npy"))
    if existing and not overwrite:
        raise DataError(out, f"already holds {len(existing)} .npy files (use --overwrite)")
    for path in existing + list(out.glob("data/.*.partial")):
        path.unlink()
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "model").mkdir(parents=True, exist_ok=True)


def simulate_dataset(
    family: str,
    samples: int,
    out: Path | str,
    seed: int = 0,
    per_file: int = 500,
    batch: int = 16,
    device: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    geometry: Geometry = CONTRACT,
) -> SimulationResult:
    """Generate ``samples`` maps of ``family`` and forward-model them into ``out``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    for name, value in (("samples", samples), ("per_file", per_file), ("batch", batch)):
        if value < 1:
            raise ValueError(f"{name}={value}: must be >= 1")
    out = Path(out)
    _prepare(out, overwrite)
    started = time.perf_counter()
    absmax, v_lo, v_hi = 0.0, np.inf, -np.inf
    n_files = -(-samples // per_file)
    bar = tqdm(total=samples, unit="sample", desc=f"simulate {family}", disable=not progress)
    for k in range(n_files):
        first = k * per_file
        count = min(per_file, samples - first)
        data_path = out / "data" / f"data{k + 1}.npy"
        partial = data_path.parent / f".{data_path.name}.partial"
        # Written through a memory map: a 500-sample file (700 MB) never sits in memory.
        data = np.lib.format.open_memmap(
            partial, mode="w+", dtype=np.float32, shape=(count, *geometry.data_shape)
        )
        models = np.empty((count, *geometry.model_shape), dtype=np.float32)
        for start in range(0, count, batch):
            n = min(batch, count - start)
            maps = generate_batch(family, seed, first + start, n)
            data[start : start + n] = simulate_shots(maps, geometry, device=device).numpy()
            models[start : start + n] = maps
            bar.update(n)
        data.flush()
        absmax = max(absmax, float(np.abs(data).max()))
        v_lo, v_hi = min(v_lo, float(models.min())), max(v_hi, float(models.max()))
        del data
        os.replace(partial, data_path)  # a file either is complete or does not exist
        np.save(out / "model" / f"model{k + 1}.npy", models)
    bar.close()
    seconds = time.perf_counter() - started
    (out / METADATA).write_text(
        json.dumps(
            {
                "family": family,
                "samples": samples,
                "seed": seed,
                "per_file": per_file,
                "generator": "epic data simulate",
                "deepwave": deepwave.__version__,
                "geometry": geometry.to_dict(),
                "seconds": round(seconds, 2),
            },
            indent=2,
        )
        + "\n"
    )
    return SimulationResult(out, family, samples, n_files, seconds, absmax, v_lo, v_hi)
