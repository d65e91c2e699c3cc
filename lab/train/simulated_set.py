"""Training data made on the compute device: velocity maps forward-modelled there by the
batched PyTorch propagator and kept there as tensors, never written to disk.

This is how ``epic train --maps ... --family ...`` feeds a GPU. The maps come from
OpenFWI-style sources (a zip, folder or file of ``modelK``/``vmodelK``/``velK_*`` arrays,
``epic.shared.data.simulate_maps``) and from the family generators (``NAME=COUNT``, maps
``0 .. COUNT-1`` of the seeded stream). A validation share of every source is held out the
way ``epic.lab.train.splits`` holds out a share of every folder: depending only on the seed and the
source sizes.

Sources are simulated in the order given and within a time budget (``minutes``): every
``--maps`` source is simulated whole, then the generated families share what is left,
round-robin, chunk by chunk, so a budget that runs out leaves each family with a share of
its maps (at least its first chunk). The counts actually simulated are logged and recorded
in the checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from epic.shared.data.simulate_maps import check_maps, find_map_files
from epic.shared.errors import ConfigError
from epic.shared.geometry import CONTRACT, Geometry
from epic.shared.physics.propagator import BatchedPropagator

__all__ = ["MapSource", "SimulatedSplit", "TensorSet", "map_sources", "simulate_split"]


@dataclass
class MapSource:
    """Velocity maps ``[n, 1, nz, nx]`` (m/s) from one place, with a label for logs."""

    label: str
    maps: np.ndarray
    generated: bool = False


def _real_source(path: Path, limit: int | None, geometry: Geometry) -> MapSource:
    files = find_map_files(path)
    arrays, total = [], 0
    for f in files:
        if limit is not None and total >= limit:
            break
        maps = check_maps(f.load(), f.label, geometry)
        if limit is not None:
            maps = maps[: limit - total]
        arrays.append(maps)
        total += len(maps)
    return MapSource(str(path), np.concatenate(arrays))


def map_sources(
    maps: Sequence[Path],
    families: dict[str, int],
    seed: int,
    limit: int | None = None,
    geometry: Geometry = CONTRACT,
) -> list[MapSource]:
    """The maps of every ``--maps`` source (the first ``limit`` of each, if given) and of
    every generated family (``families``: name -> count, stream ``seed``)."""
    from epic.shared.physics.families import FAMILIES

    sources = [_real_source(Path(p), limit, geometry) for p in maps]
    for name, count in families.items():
        if name not in FAMILIES:
            raise ConfigError(f"family {name!r}: choose from {', '.join(FAMILIES)}", "--family")
        if count < 2:
            raise ConfigError(f"{name}={count}: need at least 2 maps", "--family")
        sources.append(MapSource(name, _generate(name, seed, count), generated=True))
    return sources


def _generate(family: str, seed: int, count: int, per_task: int = 250) -> np.ndarray:
    """Maps ``0 .. count-1`` of ``family``'s stream, on every core: a FlatFault map takes
    about 6 ms, so 10,000 of them are a minute on one core. Each map is seeded by its own
    index, so the result does not depend on how the work is split."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    from epic.shared.physics.families import generate_batch

    workers = min(os.cpu_count() or 1, -(-count // per_task))
    if workers <= 1:
        return generate_batch(family, seed, 0, count)
    starts = range(0, count, per_task)
    sizes = [min(per_task, count - s) for s in starts]
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(generate_batch, [family] * len(sizes), [seed] * len(sizes), starts, sizes)
        return np.concatenate(list(parts))


class TensorSet:
    """Raw data ``[N, shots, nt, receivers]`` and maps ``[N, 1, nz, nx]`` on one device."""

    def __init__(self, data: torch.Tensor, velocity: torch.Tensor) -> None:
        self.data, self.velocity = data, velocity

    def __len__(self) -> int:
        return len(self.data)

    def batches(
        self, order: Sequence[int] | torch.Tensor, batch_size: int, drop_last: bool = False
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches in ``order``; one index gather per batch, on the device."""
        order = torch.as_tensor(order, dtype=torch.long, device=self.data.device)
        stop = len(order) - (len(order) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield self.data[idx], self.velocity[idx]


@dataclass
class SimulatedSplit:
    train: TensorSet
    val: TensorSet
    val_per_folder: list[int]
    sources: list[dict] = field(default_factory=list)  # label, maps simulated, generated
    seconds: float = 0.0

    @property
    def maps_per_second(self) -> float:
        done = sum(s["maps"] for s in self.sources)
        return done / self.seconds if self.seconds else 0.0


def _chunks(sources: list[MapSource], chunk: int) -> Iterator[tuple[int, int, int]]:
    """(source, start, stop): real sources whole and first, then the generated ones
    round-robin, so a budget cut leaves every family a share."""
    for k, s in enumerate(sources):
        if not s.generated:
            for start in range(0, len(s.maps), chunk):
                yield k, start, min(start + chunk, len(s.maps))
    generated = [k for k, s in enumerate(sources) if s.generated]
    starts = dict.fromkeys(generated, 0)
    while generated:
        for k in list(generated):
            start = starts[k]
            stop = min(start + chunk, len(sources[k].maps))
            yield k, start, stop
            starts[k] = stop
            if stop >= len(sources[k].maps):
                generated.remove(k)


def simulate_split(
    sources: list[MapSource],
    val_fraction: float,
    seed: int,
    device: torch.device,
    chunk: int | None = None,
    minutes: float | None = None,
    compile: bool | None = None,
    progress: bool = True,
    log: Callable[[str], None] = tqdm.write,
    geometry: Geometry = CONTRACT,
) -> SimulatedSplit:
    """Forward-model ``sources`` on ``device`` and hold out ``val_fraction`` of each.

    ``compile`` (default: on CUDA) fuses the propagator's step with ``torch.compile``;
    ``minutes`` bounds the simulation (generated maps only are ever cut)."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(
            f"val_fraction={val_fraction}: must lie strictly between 0 and 1", "--val-fraction"
        )
    compile = device.type == "cuda" if compile is None else compile
    # Large chunks keep a GPU busy (2,048 maps: about 20 GB of wavefields and traces); on
    # a CPU small ones keep the working set in cache.
    chunk = chunk or (2048 if device.type == "cuda" else 16)
    propagator = BatchedPropagator(geometry, device, compile=compile)
    done = [0] * len(sources)
    data = {
        k: torch.empty(len(s.maps), *geometry.data_shape, device=device)
        for k, s in enumerate(sources)
    }
    total = sum(len(s.maps) for s in sources)
    started = time.perf_counter()
    bar = tqdm(total=total, unit="map", desc="simulate", disable=not progress)
    cut = False
    for k, start, stop in _chunks(sources, chunk):
        spent = time.perf_counter() - started
        # Every family gets its first chunk, however short the budget: a cut leaves each one
        # some maps to train and validate on.
        started_all = all(done[j] >= 2 for j, s in enumerate(sources) if s.generated)
        if minutes is not None and sources[k].generated and spent > minutes * 60 and started_all:
            cut = True
            break
        maps = torch.from_numpy(sources[k].maps[start:stop]).to(device)
        if compile and stop - start < chunk:
            # One compiled shape: pad a short last chunk rather than compile again.
            maps = torch.cat([maps, maps[-1:].expand(chunk - len(maps), -1, -1, -1)])
        data[k][start:stop] = propagator(maps)[: stop - start]
        done[k] = stop
        bar.update(stop - start)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    if cut:
        log(
            f"simulation budget of {minutes:g} min spent: generated families cut to "
            + ", ".join(f"{s.label} {done[k]}" for k, s in enumerate(sources) if s.generated)
        )
    summary = [
        {"label": s.label, "maps": done[k], "generated": s.generated} for k, s in enumerate(sources)
    ]
    picks = []  # per source: (train indices, validation indices)
    for k, s in enumerate(sources):
        n = done[k]
        if n < 2:
            raise ConfigError(f"{s.label}: only {n} map(s) simulated in the budget")
        n_val = max(1, round(n * val_fraction))
        order = torch.from_numpy(np.random.default_rng([seed, k, n]).permutation(n))
        picks.append((order[n_val:].sort().values, order[:n_val].sort().values))
    # Copy into the final tensors source by source, freeing each source's block as it
    # goes: the peak is the dataset plus one source, not twice the dataset.
    n_train = sum(len(t) for t, _ in picks)
    n_val_all = sum(len(v) for _, v in picks)
    shape = geometry.data_shape
    sets = [
        TensorSet(
            torch.empty(n, *shape, device=device),
            torch.empty(n, *geometry.model_shape, device=device),
        )
        for n in (n_train, n_val_all)
    ]
    offsets = [0, 0]
    for k, s in enumerate(sources):
        velocity = torch.from_numpy(s.maps[: done[k]]).to(device)
        for which, idx in enumerate(picks[k]):
            idx = idx.to(device)
            at = offsets[which]
            sets[which].data[at : at + len(idx)] = data[k][idx]
            sets[which].velocity[at : at + len(idx)] = velocity[idx]
            offsets[which] += len(idx)
        del data[k]
    log(
        f"simulated {sum(done):,} maps on {device} in {seconds:.1f} s "
        f"({sum(done) / max(seconds, 1e-9):.1f} maps/s"
        f"{', compiled step' if propagator.compiled else ''}): "
        + ", ".join(f"{x['label']} {x['maps']}" for x in summary)
    )
    return SimulatedSplit(sets[0], sets[1], [len(v) for _, v in picks], summary, seconds)
