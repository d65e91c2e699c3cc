"""Style: natural-image-like velocity textures.

OpenFWI's Style family transfers photograph styles onto velocity maps. Photographs have a
power spectrum falling roughly as 1/f^2 (amplitude 1/f); a Gaussian random field with that
spectrum, smoothed and given the usual increase of velocity with depth, has the same
character without shipping any images. A is smooth (blurred, gentle contrasts); B keeps
more fine structure and stronger contrasts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from epic.shared.geometry import CONTRACT

__all__ = ["StyleLevel", "style_map"]


@dataclass(frozen=True)
class StyleLevel:
    spectral_exponent: float  # amplitude spectrum ~ 1 / f**exponent
    blur_cells: float  # Gaussian smoothing sigma
    span: tuple[float, float]  # range of the map's velocity spread, m/s
    depth_trend: tuple[float, float]  # m/s added from top to bottom


STYLE_A = StyleLevel(1.6, 3.0, (700.0, 1600.0), (300.0, 1200.0))
STYLE_B = StyleLevel(1.35, 1.5, (1400.0, 2800.0), (0.0, 1000.0))


def _random_field(rng: np.random.Generator, level: StyleLevel, nz: int, nx: int) -> np.ndarray:
    # Work on a grid twice the size and crop, so the FFT's periodicity does not show.
    n = 2 * max(nz, nx)
    fz = np.fft.fftfreq(n)[:, None]
    fx = np.fft.fftfreq(n)[None, :]
    f = np.hypot(fz, fx)
    f[0, 0] = 1.0 / n
    amplitude = f**-level.spectral_exponent
    amplitude *= np.exp(-2.0 * (np.pi * level.blur_cells * f) ** 2)  # Gaussian blur
    phase = np.exp(2j * np.pi * rng.random((n, n)))
    field = np.real(np.fft.ifft2(amplitude * phase))
    z0, x0 = rng.integers(0, n - nz + 1), rng.integers(0, n - nx + 1)
    return field[z0 : z0 + nz, x0 : x0 + nx]


def style_map(
    rng: np.random.Generator,
    level: StyleLevel,
    nz: int = CONTRACT.nz,
    nx: int = CONTRACT.nx,
    v_min: float = CONTRACT.v_min,
    v_max: float = CONTRACT.v_max,
) -> np.ndarray:
    field = _random_field(rng, level, nz, nx)
    field = (field - field.min()) / max(np.ptp(field), 1e-12)
    span = rng.uniform(*level.span)
    trend = rng.uniform(*level.depth_trend) * np.linspace(0.0, 1.0, nz)[:, None]
    base = rng.uniform(v_min, max(v_min, v_max - span - trend.max()))
    return np.clip(base + span * field + trend, v_min, v_max).astype(np.float32)
