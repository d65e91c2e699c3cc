"""Ground truth for scoring maps, where the source knows it: ``sim:FAMILY`` opens the same
cached shot pool the simulated edges replay (``epic.shared.pool``), so a demo sample id names
its true velocity map. Anything else has no truth, and maps carry no SSIM."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from epic.shared.errors import OptionError

__all__ = ["Truth", "open_truth"]

Truth = Callable[[str], "np.ndarray | None"]


def open_truth(spec: str, pool_size: int | None = None, pool_seed: int = 0) -> Truth:
    """``sim:FAMILY`` -> ``sample_id -> velocity [70, 70] or None`` (blocking: it may
    simulate the pool on first use)."""
    from epic.shared.pool import DEFAULT_SIZE, ShotPool

    kind, sep, family = spec.partition(":")
    if kind != "sim" or not sep or not family:
        raise OptionError(spec, "truth must be sim:FAMILY (the simulated edges' source)")
    pool = ShotPool.open(family, size=pool_size or DEFAULT_SIZE, seed=pool_seed)
    return pool.truth_for
