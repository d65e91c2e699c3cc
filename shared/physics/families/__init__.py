"""Velocity families in the spirit of OpenFWI's ten, each a small generator.

``generate(name, rng)`` returns one ``[nz, nx]`` float32 map in m/s within 1500-4500.
A variants are easier than B: fewer layers, gentler contrasts, smoother shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from epic.shared.geometry import CONTRACT
from epic.shared.physics.families.faults import (
    FAULT_A,
    FAULT_B,
    FaultLevel,
    random_fault,
    random_faults,
    render_faulted,
    soften,
)
from epic.shared.physics.families.layers import (
    EASY,
    HARD,
    Difficulty,
    LayeredModel,
    flat_interfaces,
    fold,
    layer_velocities,
    regular_interfaces,
    stacked_interfaces,
)
from epic.shared.physics.families.style import STYLE_A, STYLE_B, style_map

__all__ = ["FAMILIES", "GENERATORS_VERSION", "generate", "generate_batch"]

# Raised whenever a generator's output changes, so caches keyed by it (the demo's shot
# pool) are made anew. 2: the families fitted to OpenFWI's real maps (docs/data.md).
GENERATORS_VERSION = 2

Generator = Callable[[np.random.Generator], np.ndarray]


# Layer velocities of the FlatFault families: sorted uniform draws over 1500-4500 m/s, as
# real FlatFault-A (median step about 570 m/s, a few steps under 50 m/s).
FAULT_LAYERS_A = Difficulty((0, 0), 0, 50.0, 0.0, (0.0, 0.0), 0, (1.0, 1.0))
FAULT_LAYERS_B = Difficulty((0, 0), 0, 300.0, 0.25, (0.0, 0.0), 0, (1.0, 1.0))


# Chance that a Vel-A stack's velocities leave room for one more layer under the grid:
# fitted to real FlatVel-A's bottom row (3780 m/s on average; 4010 with 0, 3670 with 1).
FOLLOWING_LAYER = 0.65


def _layered(rng: np.random.Generator, level: Difficulty, curved: bool) -> LayeredModel:
    if level.period is not None:
        # Folds lift deeper layers into view: continue the stack as far as they can reach.
        reach = 1.3 * level.bump_cells[1] if curved else 0.0
        interfaces = regular_interfaces(rng, level, below=reach)
        inside = 1 + int(np.sum(interfaces[:, 0] < CONTRACT.nz))
        velocities = _stack_velocities(rng, inside, len(interfaces) + 1, level)
    else:
        n_layers = int(rng.integers(level.layers[0], level.layers[1] + 1))
        interfaces = flat_interfaces(rng, n_layers, level)
        velocities = layer_velocities(rng, n_layers, level)
    if curved:
        interfaces = fold(rng, interfaces, level)
    return LayeredModel(interfaces, velocities)


def _stack_velocities(
    rng: np.random.Generator, inside: int, total: int, level: Difficulty
) -> np.ndarray:
    """Velocities of a ``total``-layer stack whose first ``inside`` layers start within the
    grid: those drawn as if one more layer followed, with chance ``FOLLOWING_LAYER`` (real
    Vel-A maps rarely reach 4500 m/s at the bottom), the deeper ones (lifted into view by
    folds) faster still."""
    v = layer_velocities(rng, inside + int(rng.random() < FOLLOWING_LAYER), level)
    deeper = np.sort(rng.uniform(v[-1], CONTRACT.v_max, max(total - len(v), 0)))
    return np.concatenate([v, deeper])[:total]


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


def _flat_fault(level: Difficulty, thickness: tuple[float, float], faults: FaultLevel) -> Generator:
    """Flat layers stacked ``thickness`` cells at a time, cut by one or two faults,
    anti-aliased as real FlatFault maps are."""

    def make(rng: np.random.Generator) -> np.ndarray:
        interfaces = stacked_interfaces(rng, thickness)
        velocities = layer_velocities(rng, len(interfaces) + 1, level)
        model = LayeredModel(interfaces, velocities)
        m = soften(render_faulted(model, random_faults(rng, faults), supersample=4), 0.03)
        return np.clip(m, CONTRACT.v_min, CONTRACT.v_max)  # a scar may step just outside

    return make


FAMILIES: dict[str, Generator] = {
    "flatvel-a": _vel(EASY, curved=False),
    "flatvel-b": _vel(HARD, curved=False),
    "curvevel-a": _vel(EASY, curved=True),
    "curvevel-b": _vel(HARD, curved=True),
    "flatfault-a": _flat_fault(FAULT_LAYERS_A, (14.0, 23.0), FAULT_A),
    "flatfault-b": _flat_fault(FAULT_LAYERS_B, (9.0, 18.0), FAULT_B),
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
