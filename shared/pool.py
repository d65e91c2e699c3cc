"""A cached pool of simulated shots, shared by every simulated edge and the centre.

A ``sim:FAMILY`` edge fires one shot per time slot; slot ``k``'s content is sample
``k % size`` of the pool for ``(family, seed, size)``. Every device and the centre open the
same pool, so the same slot means the same waveforms everywhere, and the centre can look up
the true velocity of a demo sample id (``ShotPool.truth_for``) to score its maps.

On disk a pool is an OpenFWI-layout folder (``data/data1.npy``, ``model/model1.npy``,
``epic-dataset.json``; ``openfwi:`` can replay it), made once by the project's simulator and
kept under ``cache_dir/<family>-g<generators version>-seed<seed>-n<size>/``. The cache dir
is the argument, else
``$EPIC_CACHE/pool``, else ``~/.cache/epic/pool``.

Five edges started at once must not simulate five times: the first takes an exclusive
``fcntl.flock`` on ``<key>.lock``, simulates into a temporary folder and renames it into
place (a pool either is complete or does not exist); the others block on the lock, then
find the folder and read it. Arrays are memory-mapped read-only, so processes on one machine
share the page cache instead of each holding a copy.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from epic.shared.errors import DataError, OptionError
from epic.shared.physics.families import FAMILIES, GENERATORS_VERSION

__all__ = ["DEFAULT_SIZE", "ShotPool", "default_cache_dir", "parse_sample_id", "sample_id"]

DEFAULT_SIZE = 32
_SLOT_ID = re.compile(r"^(?P<family>.+)-(?P<slot>\d{1,19})$")


def sample_id(family: str, slot: int) -> str:
    """The id of time slot ``slot`` of a ``sim:FAMILY`` stream, e.g. ``flatfault-a-1712``."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")
    if slot < 0:
        raise ValueError(f"slot {slot} must be >= 0")
    return f"{family}-{slot}"


def parse_sample_id(value: str) -> tuple[str, int] | None:
    """``(family, slot)`` for a simulated sample id, ``None`` for any other id."""
    match = _SLOT_ID.match(value) if isinstance(value, str) else None
    if match is None or match["family"] not in FAMILIES:
        return None
    return match["family"], int(match["slot"])


def default_cache_dir() -> Path:
    root = os.environ.get("EPIC_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "epic"
    return base / "pool"


@dataclass(frozen=True)
class _Key:
    family: str
    seed: int
    size: int

    @property
    def name(self) -> str:
        # The generators' version is in the name: a pool made by older generators is stale.
        return f"{self.family}-g{GENERATORS_VERSION}-seed{self.seed}-n{self.size}"


class ShotPool:
    """``size`` simulated samples of one family: waveforms ``[5, 1000, 70]`` and velocity."""

    def __init__(self, family: str, seed: int, folder: Path, created: bool = False) -> None:
        self.family = family
        self.seed = seed
        self.folder = folder
        # Whether this process simulated the pool (the others found it made).
        self.created = created
        self._data = np.load(folder / "data" / "data1.npy", mmap_mode="r")
        self._model = np.load(folder / "model" / "model1.npy", mmap_mode="r")
        if len(self._data) != len(self._model) or len(self._data) == 0:
            raise DataError(folder, "damaged shot pool (data and model counts differ)")

    @classmethod
    def open(
        cls,
        family: str,
        size: int = DEFAULT_SIZE,
        seed: int = 0,
        cache_dir: Path | str | None = None,
        progress: bool = False,
    ) -> ShotPool:
        """The pool for ``(family, seed, size)``, simulated on first use (~0.2 s a sample)."""
        if family not in FAMILIES:
            raise OptionError(
                f"sim:{family}", f"unknown family; choose one of {', '.join(FAMILIES)}"
            )
        if not 1 <= size <= 10_000:
            raise OptionError(f"sim:{family}", f"pool size {size} must be 1-10000")
        if seed < 0:
            raise OptionError(f"sim:{family}", f"pool seed {seed} must be >= 0")
        key = _Key(family, seed, size)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        folder = cache / key.name
        if _complete(folder):
            return cls(family, seed, folder)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            lock = (cache / f"{key.name}.lock").open("a")
        except OSError as exc:
            raise DataError(cache, f"cannot use the pool cache ({exc})") from exc
        with lock:
            # Blocks while another process simulates this pool; the lock ends with the file.
            fcntl.flock(lock, fcntl.LOCK_EX)
            created = False
            if not _complete(folder):
                _simulate(key, cache, folder, progress)
                created = True
        return cls(family, seed, folder, created=created)

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        return len(self._data)

    def index_of(self, slot: int) -> int:
        """The pool sample that time slot ``slot`` replays."""
        return slot % len(self._data)

    def waveforms(self, index: int, receivers: tuple[int, int] | None = None) -> np.ndarray:
        """Sample ``index``'s waveforms ``[5, 1000, 70]`` float32, or only columns
        ``receivers = (first, last_exclusive)`` (a copy; the pool stays read-only)."""
        a, b = receivers if receivers is not None else (0, self._data.shape[-1])
        return np.array(self._data[index, :, :, a:b], dtype=np.float32)

    def velocity(self, index: int) -> np.ndarray:
        """Sample ``index``'s velocity map ``[70, 70]`` float32 in m/s (rows are depth)."""
        return np.array(self._model[index, 0], dtype=np.float32)

    def truth_for(self, sample: str) -> np.ndarray | None:
        """The true velocity ``[70, 70]`` of a simulated sample id of this pool's family,
        ``None`` for any other id. (The pool must match the edges' size and seed.)"""
        parsed = parse_sample_id(sample)
        if parsed is None or parsed[0] != self.family:
            return None
        return self.velocity(self.index_of(parsed[1]))


def _complete(folder: Path) -> bool:
    return (folder / "epic-dataset.json").is_file()


def _simulate(key: _Key, cache: Path, folder: Path, progress: bool) -> None:
    from epic.shared.data.simulate import simulate_dataset  # deepwave: only when simulating

    # We hold the lock: any temporary folder for this key is a crashed run's leftover.
    for stale in cache.glob(f".{key.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = cache / f".{key.name}.tmp-{os.getpid()}"
    try:
        simulate_dataset(
            key.family, key.size, tmp, seed=key.seed, per_file=key.size, progress=progress
        )
        if folder.exists():  # an incomplete folder someone left by hand: ours replaces it
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
