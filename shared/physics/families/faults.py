"""Faults: slanted planes across a layered model, one side displaced along each.

A fault crossing mid-depth at column ``x_mid`` dips at ``dip`` degrees; every point on its
hanging-wall side reads the layered model ``throw`` cells shallower (a normal fault, layers
appear deeper there) or deeper (a reverse fault). The displacement is taken as vertical,
which is exact for flat layers and close for gently curved ones. Where two hanging walls
overlap, their throws add, as a block cut by two faults moves by both.

Real OpenFWI FlatFault maps are anti-aliased: an interface or a fault plane that crosses a
cell gives it an in-between velocity (about one such cell per interface). ``render_faulted``
reproduces this by averaging ``supersample`` x ``supersample`` points per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from epic.shared.geometry import CONTRACT
from epic.shared.physics.families.layers import LayeredModel

__all__ = [
    "FAULT_A",
    "FAULT_B",
    "Fault",
    "FaultLevel",
    "random_fault",
    "random_faults",
    "render_faulted",
    "soften",
]


@dataclass(frozen=True)
class Fault:
    x_mid: float  # column where the fault plane crosses mid-depth
    dip_deg: float  # angle from horizontal; 90 is vertical
    direction: int  # +1 dips towards larger columns, -1 towards smaller ones
    throw: float  # cells; positive moves the hanging wall down
    scar: float = 0.0  # relative velocity change in a thin band along the plane

    def trace(self, z: np.ndarray, nz: int = CONTRACT.nz) -> np.ndarray:
        """Column where the plane is at depth ``z`` (cells)."""
        return self.x_mid + self.direction * (z - nz / 2) / np.tan(np.radians(self.dip_deg))

    def distance(self, z: np.ndarray, x: np.ndarray, nz: int = CONTRACT.nz) -> np.ndarray:
        """Distance (cells) of the points ``(z, x)`` from the fault plane."""
        return np.abs(x - self.trace(z, nz)) * np.sin(np.radians(self.dip_deg))

    def side(self, z: np.ndarray, x: np.ndarray, nz: int = CONTRACT.nz) -> np.ndarray:
        """Boolean: which of the points ``(z, x)`` (cells) lie on the hanging wall."""
        return (x - self.trace(z, nz)) * self.direction > 0

    def hanging_wall(self, nz: int = CONTRACT.nz, nx: int = CONTRACT.nx) -> np.ndarray:
        """Boolean ``[nz, nx]``: cells on the side the plane dips under."""
        z, x = np.mgrid[0:nz, 0:nx].astype(np.float64)
        return self.side(z, x, nz)


@dataclass(frozen=True)
class FaultLevel:
    """How many faults, how steep, how far they move the layers."""

    two_faults: float  # probability of a second fault
    dip_deg: tuple[float, float]  # range of dips, degrees from horizontal
    throw: tuple[float, float]  # range of |throw|, cells
    x_mid: tuple[float, float]  # range of the mid-depth crossing, fraction of the line
    edge_prob: float = 0.0  # chance, per end of the line, of a steep step near that end
    edge_cols: tuple[float, float] = (2.0, 7.0)  # its distance from the end, cells
    edge_throw: tuple[float, float] = (2.0, 8.0)  # its offset, cells
    block: float = 0.0  # chance that two faults bound a moved block (sides stay level)
    scar: tuple[float, float] = (0.0, 0.0)  # range of the relative velocity change along a plane


# Fitted to real FlatFault-A (docs/data.md, "Real and simulated families"): most maps are
# cut twice, often around a moved block, at dips from about 30 degrees to vertical, anywhere
# along the line; offsets of 2-9 cells per fault give its interface relief (7.5 cells).
# Four in five real maps also have a short, near-vertical offset a few cells from each end
# of the line (probably an artefact of how OpenFWI moved its blocks); the edge faults mimic
# it. Fault planes show as faint lines (scars) in real maps too.
FAULT_A = FaultLevel(
    0.85, (30.0, 88.0), (2.0, 9.0), (0.1, 0.9), 0.7, (2.0, 7.0), (1.0, 5.0), 0.8, (0.0, 0.004)
)
FAULT_B = FaultLevel(
    0.8, (30.0, 88.0), (5.0, 14.0), (0.1, 0.9), 0.75, (2.0, 7.0), (1.0, 7.0), 0.5, (0.0, 0.008)
)


def random_fault(
    rng: np.random.Generator,
    throw_cells: tuple[float, float],
    nx: int = CONTRACT.nx,
    dip_deg: tuple[float, float] = (50.0, 80.0),
    x_mid: tuple[float, float] = (0.3, 0.7),
    scar: tuple[float, float] = (0.0, 0.0),
) -> Fault:
    throw = rng.uniform(*throw_cells) * rng.choice([-1.0, 1.0])
    return Fault(
        x_mid=rng.uniform(x_mid[0] * nx, x_mid[1] * nx),
        dip_deg=rng.uniform(*dip_deg),
        direction=int(rng.choice([-1, 1])),
        throw=throw,
        scar=rng.uniform(*scar) * rng.choice([-1.0, 1.0]),
    )


def random_faults(
    rng: np.random.Generator,
    level: FaultLevel,
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
) -> list[Fault]:
    """One fault, or two with probability ``level.two_faults``, then the edge faults."""
    count = 2 if rng.random() < level.two_faults else 1
    faults = [
        random_fault(rng, level.throw, nx, level.dip_deg, level.x_mid, level.scar)
        for _ in range(count)
    ]
    if count == 2 and rng.random() < level.block:
        # A block between the two faults moves, the sides stay level (graben or horst):
        # of the two signs of the second throw, take the one with the smaller relief.
        x = np.arange(nx, dtype=np.float64)
        z = np.full(nx, nz / 2)
        first = faults[0].throw * faults[0].side(z, x, nz)
        flipped = replace(faults[1], throw=-faults[1].throw)
        relief = [np.ptp(first + f.throw * f.side(z, x, nz)) for f in (faults[1], flipped)]
        if relief[1] < relief[0]:
            faults[1] = flipped
    for direction in (-1, 1):  # -1: the strip at column 0 moves; +1: the one at nx - 1
        if rng.random() < level.edge_prob:
            col = rng.uniform(*level.edge_cols)
            faults.append(
                Fault(
                    x_mid=col if direction < 0 else nx - 1 - col,
                    dip_deg=rng.uniform(80.0, 90.0),
                    direction=direction,
                    throw=rng.uniform(*level.edge_throw) * rng.choice([-1.0, 1.0]),
                    scar=rng.uniform(*level.scar) * rng.choice([-1.0, 1.0]),
                )
            )
    return faults


def render_faulted(
    model: LayeredModel,
    faults: list[Fault],
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
    supersample: int = 1,
) -> np.ndarray:
    """Render ``model`` with each fault's hanging wall displaced by its throw.

    With ``supersample`` s > 1, each cell is the mean of s x s points spread over it, so
    interfaces and fault planes that cross a cell blend the velocities on either side. A
    fault with a ``scar`` changes the velocity by that fraction within half a cell of its
    plane, the faint line real FlatFault maps show along their faults.
    """
    s = supersample
    offsets = (np.arange(s) + 0.5) / s - 0.5
    z = (np.arange(nz)[:, None] + offsets[None, :]).reshape(-1)  # [nz * s]
    x = (np.arange(nx)[:, None] + offsets[None, :]).reshape(-1)  # [nx * s]
    zz, xx = np.meshgrid(z, x, indexing="ij")
    depth = zz.copy()
    scale = np.ones_like(zz)
    for fault in faults:
        depth = depth - fault.throw * fault.side(zz, xx, nz)
        if fault.scar:
            scale = scale * (1.0 + fault.scar * (fault.distance(zz, xx, nz) < 0.5))
    fine = LayeredModel(np.repeat(model.interfaces, s, axis=1), model.velocities)
    values = fine.render(depth).astype(np.float64) * scale
    return values.reshape(nz, s, nx, s).mean(axis=(1, 3)).astype(np.float32)


def soften(m: np.ndarray, leak: float) -> np.ndarray:
    """Blend each cell with its four neighbours, ``leak`` of each (a [leak, 1 - 2 leak,
    leak] kernel down and across, edges repeated): the slight spread real FlatFault maps
    show around every interface."""
    out = np.asarray(m, dtype=np.float64)
    for axis in (0, 1):
        pad = np.pad(out, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        lo = np.take(pad, np.arange(0, out.shape[axis]), axis=axis)
        hi = np.take(pad, np.arange(2, out.shape[axis] + 2), axis=axis)
        out = (1 - 2 * leak) * out + leak * (lo + hi)
    return out.astype(np.float32)
