"""Faults: a slanted plane across a layered model, one side displaced along it.

A fault crossing mid-depth at column ``x_mid`` dips at ``dip`` degrees; every cell on its
hanging-wall side reads the layered model ``throw`` cells shallower (a normal fault, layers
appear deeper there) or deeper (a reverse fault). The displacement is taken as vertical,
which is exact for flat layers and close for gently curved ones. Where two hanging walls
overlap, their throws add, as a block cut by two faults moves by both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.geometry import CONTRACT
from shared.physics.families.layers import LayeredModel

__all__ = ["Fault", "random_fault", "render_faulted"]


@dataclass(frozen=True)
class Fault:
    x_mid: float  # column where the fault plane crosses mid-depth
    dip_deg: float  # angle from horizontal; 90 is vertical
    direction: int  # +1 dips towards larger columns, -1 towards smaller ones
    throw: float  # cells; positive moves the hanging wall down

    def hanging_wall(self, nz: int = CONTRACT.nz, nx: int = CONTRACT.nx) -> np.ndarray:
        """Boolean ``[nz, nx]``: cells on the side the plane dips under."""
        z, x = np.mgrid[0:nz, 0:nx].astype(np.float64)
        trace = self.x_mid + self.direction * (z - nz / 2) / np.tan(np.radians(self.dip_deg))
        return (x - trace) * self.direction > 0


def random_fault(
    rng: np.random.Generator, throw_cells: tuple[float, float], nx: int = CONTRACT.nx
) -> Fault:
    throw = rng.uniform(*throw_cells) * rng.choice([-1.0, 1.0])
    return Fault(
        # Anchored at mid-depth near the middle, so the cut crosses the layers, not a corner.
        x_mid=rng.uniform(0.3 * nx, 0.7 * nx),
        dip_deg=rng.uniform(50.0, 80.0),
        direction=int(rng.choice([-1, 1])),
        throw=throw,
    )


def render_faulted(
    model: LayeredModel, faults: list[Fault], nz: int = CONTRACT.nz, nx: int = CONTRACT.nx
) -> np.ndarray:
    """Render ``model`` with each fault's hanging wall displaced by its throw."""
    depth = np.broadcast_to(np.arange(nz, dtype=np.float64)[:, None], (nz, nx)).copy()
    for fault in faults:
        depth = depth - fault.throw * fault.hanging_wall(nz, nx)
    return model.render(depth)
