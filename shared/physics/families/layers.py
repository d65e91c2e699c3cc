"""Layered earth models: flat or curved interfaces, the base of the Vel and Fault families.

A layered model is a list of interface depths (one curve per interface, in grid cells,
possibly fractional) and one velocity per layer. ``render`` evaluates it at any depth, so
faults can sample it at shifted depths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epic.shared.geometry import CONTRACT

__all__ = [
    "Difficulty",
    "LayeredModel",
    "curved_interfaces",
    "flat_interfaces",
    "fold",
    "layer_velocities",
    "regular_interfaces",
    "stacked_interfaces",
]


@dataclass(frozen=True)
class Difficulty:
    """What separates an A variant from a B variant."""

    layers: tuple[int, int]  # inclusive range of the number of layers
    min_thickness: int  # cells
    min_step: float  # smallest velocity change between adjacent layers, m/s
    inversion_prob: float  # chance that a layer is slower than the one above
    bump_cells: tuple[float, float]  # amplitude range of interface bending
    bump_terms: int  # sines summed into one interface shape
    wavelength_cells: tuple[float, float]
    # Regular layering (OpenFWI's Vel-A families): every layer but the first and the last
    # equally thick, that thickness log-uniform in ``period``; the first within
    # ``first_jitter`` cells of it. None: a random (Dirichlet) split of the rows instead.
    period: tuple[float, float] | None = None
    first_jitter: float = 7.0


# A: measured on real FlatVel-A and CurveVel-A (docs/data.md, "Real and simulated
# families"): 3-7 layers of one thickness per map (9-25 cells), velocities sorted uniform
# draws that always rise, sometimes by a few m/s only; folds as high as 40 cells from
# crest to trough with wavelengths of 20-40 cells, every interface folded alike.
EASY = Difficulty((3, 7), 5, 0.0, 0.0, (4.0, 20.0), 2, (25.0, 60.0), (9.0, 25.0), 7.0)
# B: thinner layers, bigger contrasts, slow layers under fast ones, tighter folds.
HARD = Difficulty((5, 7), 4, 350.0, 0.25, (8.0, 26.0), 3, (12.0, 40.0))


@dataclass(frozen=True)
class LayeredModel:
    interfaces: np.ndarray  # [n_layers - 1, nx], depth (cells) where each next layer starts
    velocities: np.ndarray  # [n_layers], m/s, top to bottom

    def render(self, depth: np.ndarray | None = None) -> np.ndarray:
        """Velocity at each (depth, column); ``depth`` defaults to the grid's own rows.

        ``depth`` is ``[nz, nx]`` in cells: a fault passes shifted depths.
        """
        nx = self.interfaces.shape[1]
        if depth is None:
            depth = np.broadcast_to(
                np.arange(CONTRACT.nz, dtype=np.float64)[:, None], (CONTRACT.nz, nx)
            )
        layer = (depth[None, :, :] >= self.interfaces[:, None, :]).sum(axis=0)
        return self.velocities[layer].astype(np.float32)


def layer_velocities(
    rng: np.random.Generator,
    n: int,
    level: Difficulty,
    v_min: float = CONTRACT.v_min,
    v_max: float = CONTRACT.v_max,
) -> np.ndarray:
    """Velocities top to bottom, rising with depth, adjacent layers at least ``min_step``
    apart; with ``inversion_prob`` a layer trades places with the one above (a low-velocity
    layer under a fast one, as B variants have)."""
    gap = level.min_step
    room = (v_max - v_min) - gap * (n - 1)
    if room < 0:
        raise ValueError(f"{n} layers {gap} m/s apart do not fit in [{v_min}, {v_max}] m/s")
    # n sorted draws from the spare room, then the gaps added back: uniform over all
    # increasing sequences that respect the minimum step.
    velocities = v_min + np.sort(rng.uniform(0.0, room, n)) + gap * np.arange(n)
    for i in range(1, n):
        if rng.random() < level.inversion_prob:
            velocities[i - 1], velocities[i] = velocities[i], velocities[i - 1]
    return velocities


def flat_interfaces(
    rng: np.random.Generator,
    n_layers: int,
    level: Difficulty,
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
) -> np.ndarray:
    """``n_layers - 1`` horizontal interfaces with at least ``min_thickness`` between them."""
    k = n_layers - 1
    slack = nz - level.min_thickness * (k + 1)
    if slack < 0:
        raise ValueError(f"{n_layers} layers of {level.min_thickness} cells exceed {nz} rows")
    # Spread the slack randomly over the k + 1 layers (a Dirichlet split), then accumulate.
    extra = rng.dirichlet(np.ones(k + 1)) * slack
    thickness = level.min_thickness + extra
    depths = np.cumsum(thickness)[:-1]
    return np.repeat(np.round(depths)[:, None], nx, axis=1).astype(np.float64)


def regular_interfaces(
    rng: np.random.Generator,
    level: Difficulty,
    below: float = 0.0,
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
) -> np.ndarray:
    """Horizontal interfaces one ``period`` apart (log-uniform per map, whole cells), the
    first within ``first_jitter`` cells of that depth; as many as reach ``below`` cells under
    the grid (folds lift deeper layers into view), at most ``level.layers[1] - 1``."""
    if level.period is None:
        raise ValueError("regular_interfaces needs a Difficulty with a period")
    low, high = np.log(level.period[0]), np.log(level.period[1])
    period = float(np.exp(rng.uniform(low, high)))
    first = max(float(level.min_thickness), period + rng.uniform(-1, 1) * level.first_jitter)
    depths: list[float] = []
    depth = first
    while len(depths) < level.layers[1] - 1 and (not depths or depths[-1] < nz + below):
        depths.append(float(np.round(depth)))
        depth += period
    if len(depths) > level.layers[0] - 1 and depths[-1] >= nz + below:
        depths.pop()  # past the folds' reach: no layer starts there
    return np.repeat(np.asarray(depths)[:, None], nx, axis=1)


def stacked_interfaces(
    rng: np.random.Generator,
    thickness: tuple[float, float],
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
) -> np.ndarray:
    """Layers stacked from the top, each ``thickness`` cells thick (uniform in the range,
    fractional), until the grid is full; the last layer is what is left. Real FlatFault-A
    maps are built like this: nearly all have four layers of 15-24 cells."""
    depths = []
    depth = rng.uniform(*thickness)
    while depth < nz - 1:
        depths.append(depth)
        depth += rng.uniform(*thickness)
    return np.repeat(np.asarray(depths, dtype=np.float64)[:, None], nx, axis=1)


def bend(rng: np.random.Generator, level: Difficulty, nx: int = CONTRACT.nx) -> np.ndarray:
    """A smooth bump profile ``[nx]`` (cells), the sum of ``bump_terms`` random sines."""
    x = np.arange(nx, dtype=np.float64)
    shape = np.zeros(nx)
    for _ in range(level.bump_terms):
        wavelength = rng.uniform(*level.wavelength_cells)
        shape += np.sin(2 * np.pi * x / wavelength + rng.uniform(0, 2 * np.pi))
    shape /= max(np.abs(shape).max(), 1e-9)
    return shape * rng.uniform(*level.bump_cells)


def fold(rng: np.random.Generator, flat: np.ndarray, level: Difficulty) -> np.ndarray:
    """Fold flat interfaces ``[k, nx]`` by one shared bump profile (as strata fold
    together), each interface with its own small variation; interfaces never cross."""
    nx = flat.shape[1]
    common = bend(rng, level, nx)
    rows = []
    for depth in flat:
        own = 0.15 * bend(rng, level, nx)
        rows.append(depth + common * rng.uniform(0.8, 1.2) + own)
    curves = np.asarray(rows)
    # Keep order: each interface at least one cell under the one above.
    for i in range(1, len(curves)):
        curves[i] = np.maximum(curves[i], curves[i - 1] + 1.0)
    return curves


def curved_interfaces(
    rng: np.random.Generator,
    n_layers: int,
    level: Difficulty,
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
) -> np.ndarray:
    """``n_layers - 1`` flat interfaces (a Dirichlet split), folded."""
    return fold(rng, flat_interfaces(rng, n_layers, level, nz, nx), level)
