"""The forward model: deepwave's scalar propagator with the contract geometry.

``simulate_shots`` is the plain-function interface and ``ForwardModel`` the ``nn.Module``;
both share this docstring's conventions.

Conventions that matter for reproducing our data with deepwave directly:

* velocity ``[n, nz, nx]`` in m/s (rows are depth), ``grid_spacing = spacing_m``,
  ``dt = dt_s``; one source per shot at ``(source_row, column)``; receivers at
  ``(receiver_row, receiver_columns)``;
* source: ``deepwave.wavelets.ricker(peak_freq_hz, nt, dt_s, peak_time_s)``, unit amplitude;
* ``accuracy=4``, ``pml_width=20`` on every side, ``pml_freq=peak_freq_hz``;
* ``max_vel`` is pinned to the contract's ceiling (4500 m/s), so a sample's data does not
  depend on which other samples shared its batch. A plain deepwave call with its default
  ``max_vel`` (the map's own maximum) agrees to about 0.5 % relative L2 error (measured on
  a 1800-3000 m/s map; the test suite checks < 1 %).

Output layout is OpenFWI's: ``[n, shots, time, receivers]``, float32.
"""

from __future__ import annotations

import warnings

import deepwave
import numpy as np
import torch

from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["ForwardModel", "simulate_shots", "source_wavelet"]


def source_wavelet(geometry: Geometry = CONTRACT) -> torch.Tensor:
    """The source time function ``[nt]``: a unit-amplitude Ricker wavelet."""
    return deepwave.wavelets.ricker(
        geometry.peak_freq_hz, geometry.nt, geometry.dt_s, geometry.peak_time_s
    )


def _check_velocity(velocity: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    if velocity.ndim == 4 and velocity.shape[1] == 1:
        velocity = velocity[:, 0]
    if velocity.ndim == 2:
        velocity = velocity[None]
    expected = (geometry.nz, geometry.nx)
    if velocity.ndim != 3 or tuple(velocity.shape[1:]) != expected:
        raise ValueError(
            f"velocity shape {tuple(velocity.shape)}: expected [n, {expected[0]}, {expected[1]}]"
        )
    if not torch.isfinite(velocity).all():
        raise ValueError("velocity contains NaN or infinite values")
    low = float(velocity.min())
    if low <= 0:
        raise ValueError(f"velocity min {low} m/s: must be > 0")
    high = float(velocity.max())
    if low < geometry.v_min or high > geometry.v_max:
        warnings.warn(
            f"velocity range [{low:.0f}, {high:.0f}] m/s lies outside the contract's "
            f"[{geometry.v_min:.0f}, {geometry.v_max:.0f}]",
            UserWarning,
            stacklevel=3,
        )
    return velocity


def simulate_shots(
    velocity: torch.Tensor | np.ndarray,
    geometry: Geometry = CONTRACT,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Forward-model every shot of every velocity map.

    Args:
        velocity: ``[n, nz, nx]``, ``[n, 1, nz, nx]`` or ``[nz, nx]`` in m/s.
        geometry: the acquisition; the contract's by default.
        device: where to propagate (CUDA when given one); the result returns on the CPU.

    Returns:
        ``[n, shots, nt, receivers]`` float32 receiver amplitudes.
    """
    v = torch.as_tensor(np.asarray(velocity) if not torch.is_tensor(velocity) else velocity)
    v = _check_velocity(v.to(torch.float32), geometry)
    device = torch.device(device) if device is not None else v.device
    n, n_shots, n_rec = v.shape[0], geometry.n_shots, geometry.n_receivers

    # deepwave batches one model per shot: repeat each map once per source.
    v_shots = v.to(device).repeat_interleave(n_shots, dim=0)
    src = torch.zeros(n * n_shots, 1, 2, dtype=torch.long, device=device)
    src[:, 0, 0] = geometry.source_row
    src[:, 0, 1] = torch.tensor(geometry.source_columns, device=device).repeat(n)
    rec = torch.zeros(n * n_shots, n_rec, 2, dtype=torch.long, device=device)
    rec[..., 0] = geometry.receiver_row
    rec[..., 1] = torch.tensor(geometry.receiver_columns, device=device)
    amplitudes = source_wavelet(geometry).to(device).reshape(1, 1, -1).repeat(n * n_shots, 1, 1)

    out = deepwave.scalar(
        v_shots,
        geometry.spacing_m,
        geometry.dt_s,
        source_amplitudes=amplitudes,
        source_locations=src,
        receiver_locations=rec,
        accuracy=geometry.accuracy,
        pml_width=geometry.pml_width,
        pml_freq=geometry.peak_freq_hz,
        max_vel=max(geometry.v_max, float(v.max())),
    )
    data = out.receiver_amplitudes  # [n * shots, receivers, nt]
    return data.reshape(n, n_shots, n_rec, geometry.nt).transpose(2, 3).contiguous().cpu()


class ForwardModel(torch.nn.Module):
    """``nn.Module`` form of :func:`simulate_shots`, holding its geometry."""

    def __init__(self, geometry: Geometry = CONTRACT) -> None:
        super().__init__()
        self.geometry = geometry

    def forward(self, velocity: torch.Tensor) -> torch.Tensor:
        return simulate_shots(velocity, self.geometry, device=velocity.device)
