"""Velocity families in the spirit of OpenFWI's ten, each a small generator.

``generate(name, rng)`` returns one ``[nz, nx]`` float32 map in m/s within 1500-4500.
A variants are easier than B: fewer layers, gentler contrasts, smoother shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.physics.families.faults import random_fault, render_faulted
from shared.physics.families.layers import (
    EASY,
    HARD,
    Difficulty,
    LayeredModel,
    curved_interfaces,
    flat_interfaces,
    layer_velocities,
)
from shared.physics.families.style import STYLE_A, STYLE_B, style_map

__all__ = ["FAMILIES", "generate", "generate_batch"]

Generator = Callable[[np.random.Generator], np.ndarray]


def _layered(rng: np.random.Generator, level: Difficulty, curved: bool) -> LayeredModel:
    n_layers = int(rng.integers(level.layers[0], level.layers[1] + 1))
    make = curved_interfaces if curved else flat_interfaces
    return LayeredModel(make(rng, n_layers, level), layer_velocities(rng, n_layers, level))


def _vel(level: Difficulty, curved: bool) -> Generator:
    return lambda rng: _layered(rng, level, curved).render()


def _fault(
    level: Difficulty, curved: bool, throw: tuple[float, float], max_faults: int
) -> Generator:
    def make(rng: np.random.Generator) -> np.ndarray:
        model = _layered(rng, level, curved)
        faults = [random_fault(rng, throw) for _ in range(int(rng.integers(1, max_faults + 1)))]
        return render_faulted(model, faults)

    return make


FAMILIES: dict[str, Generator] = {
    "flatvel-a": _vel(EASY, curved=False),
    "flatvel-b": _vel(HARD, curved=False),
    "curvevel-a": _vel(EASY, curved=True),
    "curvevel-b": _vel(HARD, curved=True),
    "flatfault-a": _fault(EASY, curved=False, throw=(4.0, 10.0), max_faults=1),
    "flatfault-b": _fault(HARD, curved=False, throw=(6.0, 16.0), max_faults=2),
    "curvefault-a": _fault(EASY, curved=True, throw=(4.0, 10.0), max_faults=1),
    "curvefault-b": _fault(HARD, curved=True, throw=(6.0, 16.0), max_faults=2),
    "style-a": lambda rng: style_map(rng, STYLE_A),
    "style-b": lambda rng: style_map(rng, STYLE_B),
}


def generate(family: str, rng: np.random.Generator) -> np.ndarray:
    """One velocity map ``[nz, nx]`` of ``family``."""
    try:
        make = FAMILIES[family]
    except KeyError:
        raise ValueError(
            f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}"
        ) from None
    return make(rng)


def generate_batch(family: str, seed: int, start: int, count: int) -> np.ndarray:
    """Maps ``start .. start + count - 1`` of the stream for ``seed``: ``[count, 1, nz, nx]``.

    Each sample has its own generator seeded by ``(seed, index)``, so sample k is the same
    whatever the batching or the number of samples asked for.
    """
    maps = [generate(family, np.random.default_rng([seed, start + i])) for i in range(count)]
    return np.stack(maps)[:, None].astype(np.float32)
