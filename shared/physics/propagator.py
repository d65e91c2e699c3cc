"""A batched scalar-wave propagator in plain PyTorch, for machines without deepwave (a GPU
box with no network): many maps and all their shots in one tensor, on any torch device.

deepwave stays the reference and the CPU default (``epic.shared.physics.forward``). This module
solves the same discrete problem deepwave 0.1's scalar propagator solves for the contract
geometry, so that data simulated here and there are interchangeable (the test suite checks
every family within 1 % relative L2):

* second-order leapfrog in time; ``accuracy`` 4 central differences in space, zero beyond a
  halo of ``accuracy // 2`` cells;
* the internal step is ``dt / step_ratio``, ``step_ratio`` the smallest integer that keeps
  the Courant number at most 0.6 for ``max_vel`` (2 for the contract: 0.5 ms);
* the model is extended by ``pml_width + accuracy // 2`` cells of edge replication on every
  side, with deepwave's C-PML (R = 0.001, quadratic damping, alpha = pi * pml_freq falling
  to zero into the layer) and its psi/zeta auxiliary fields;
* the source is ``-wavelet * v(source)^2 * dt^2`` added after each step, the wavelet
  upsampled to the internal step by FFT; receivers read the field before each step and are
  FFT-downsampled back to ``dt``.

Why not deepwave itself there: its wheel (100 MB, compiled kernels) cannot travel to the GPU
machine, and its pure-PyTorch backend runs one shot batch through a long generic path. Here
the maps share the shots' dimension: velocity is ``[n, 1, H, W]`` against wavefields
``[n, shots, H, W]``, and one step is a single function that ``torch.compile`` fuses into a
few kernels on CUDA.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from epic.shared.geometry import CONTRACT, Geometry

__all__ = [
    "BatchedPropagator",
    "cpml_profile",
    "downsample",
    "ricker",
    "step_ratio",
    "upsample",
]

# deepwave's defaults for the scalar propagator: Courant number and C-PML target reflection.
COURANT = 0.6
PML_REFLECTION = 1e-3
PML_POWER = 2


def ricker(geometry: Geometry = CONTRACT, device: torch.device | str = "cpu") -> torch.Tensor:
    """The contract's source wavelet ``[nt]``: a unit-amplitude Ricker peaking at
    ``peak_time_s`` (deepwave.wavelets.ricker's formula, computed in float64)."""
    t = torch.arange(geometry.nt, dtype=torch.float64) * geometry.dt_s - geometry.peak_time_s
    arg = (math.pi * geometry.peak_freq_hz * t) ** 2
    return ((1 - 2 * arg) * torch.exp(-arg)).to(torch.float32).to(device)


def step_ratio(geometry: Geometry = CONTRACT, max_vel: float | None = None) -> int:
    """Internal steps per output sample (deepwave's CFL rule)."""
    vmax = geometry.v_max if max_vel is None else max_vel
    courant = geometry.dt_s * vmax * math.sqrt(2) / geometry.spacing_m
    return max(1, math.ceil(courant / COURANT))


def upsample(signal: torch.Tensor, ratio: int) -> torch.Tensor:
    """Band-limited upsampling of the last dimension by ``ratio`` (FFT, Nyquist zeroed)."""
    if ratio == 1:
        return signal
    nt = signal.shape[-1]
    spectrum = torch.fft.rfft(signal, norm="ortho") * math.sqrt(ratio)
    if nt % 2 == 0 and spectrum.shape[-1] > 1:
        spectrum[..., -1] = 0
    spectrum = F.pad(spectrum, (0, nt * ratio // 2 + 1 - spectrum.shape[-1]))
    return torch.fft.irfft(spectrum, n=nt * ratio, norm="ortho")


def downsample(signal: torch.Tensor, ratio: int) -> torch.Tensor:
    """Band-limited downsampling of the last dimension by ``ratio`` (FFT low-pass)."""
    if ratio == 1:
        return signal
    down = signal.shape[-1] // ratio
    spectrum = torch.fft.rfft(signal, norm="ortho")[..., : down // 2 + 1]
    if down % 2 == 0 and spectrum.shape[-1] > 1:
        spectrum[..., -1] = 0
    return torch.fft.irfft(spectrum, n=down, norm="ortho") / math.sqrt(ratio)


def _d1(f: torch.Tensor, dim: int, rdx: float) -> torch.Tensor:
    """4th-order first derivative along ``dim`` (-1 or -2), zero on the 2-cell halo."""
    n = f.shape[dim]
    inner = (8 / 12) * (f.narrow(dim, 3, n - 4) - f.narrow(dim, 1, n - 4)) + (-1 / 12) * (
        f.narrow(dim, 4, n - 4) - f.narrow(dim, 0, n - 4)
    )
    return F.pad(inner * rdx, (2, 2) if dim == -1 else (0, 0, 2, 2))


def _d2(f: torch.Tensor, dim: int, rdx2: float) -> torch.Tensor:
    """4th-order second derivative along ``dim``, in deepwave's constant-preserving form."""
    n = f.shape[dim]
    c = f.narrow(dim, 2, n - 4)
    inner = (4 / 3) * ((f.narrow(dim, 3, n - 4) - c) + (f.narrow(dim, 1, n - 4) - c)) + (
        -1 / 12
    ) * ((f.narrow(dim, 4, n - 4) - c) + (f.narrow(dim, 0, n - 4) - c))
    return F.pad(inner * rdx2, (2, 2) if dim == -1 else (0, 0, 2, 2))


def cpml_profile(
    length: int, geometry: Geometry, dt: float, max_vel: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """C-PML ``a``, ``b`` and ``db/dx`` along one padded axis of ``length`` cells (float64).

    deepwave's ``setup_pml`` with its defaults: the layer starts ``pml_width`` cells inside
    the halo on each side; damping ``3 v_max ln(1/R) / (2 L) f^2`` and frequency shift
    ``pi pml_freq (1 - f)`` for the fraction ``f`` of the way into the layer."""
    pad = geometry.accuracy // 2
    width = geometry.pml_width
    x = torch.arange(length, dtype=torch.float64)
    starts = (float(pad + width), float(length - 1 - pad - width))
    fraction = torch.maximum(
        ((starts[0] - x) / width).clamp(0, 1), ((x - starts[1]) / width).clamp(0, 1)
    )
    sigma0 = (
        -(1 + PML_POWER) * max_vel * math.log(PML_REFLECTION) / (2 * width * geometry.spacing_m)
    )
    sigma = sigma0 * fraction**PML_POWER * dt
    alpha = math.pi * geometry.peak_freq_hz * (1 - fraction) * dt
    total = sigma + alpha
    ratio = (sigma / torch.where(total == 0, torch.ones_like(total), total)).clamp(0, 1)
    a = torch.exp(-total)
    b = ratio * torch.expm1(-total).clamp(-1, 0)
    a[fraction == 0] = 0
    db = _d1(b[None], -1, 1 / geometry.spacing_m)[0]
    return a, b, db


@dataclass(frozen=True)
class _Profiles:
    """Per-axis C-PML profiles, shaped to broadcast over ``[n, shots, H, W]``."""

    ay: torch.Tensor
    by1: torch.Tensor  # 1 + b
    by: torch.Tensor
    dby: torch.Tensor
    ax: torch.Tensor
    bx1: torch.Tensor
    bx: torch.Tensor
    dbx: torch.Tensor


def _step(
    u: torch.Tensor,
    u_prev: torch.Tensor,
    psi_y: torch.Tensor,
    psi_x: torch.Tensor,
    zeta_y: torch.Tensor,
    zeta_x: torch.Tensor,
    v2dt2: torch.Tensor,
    source_scale: torch.Tensor,
    onehot: torch.Tensor,
    wavelet_t: torch.Tensor,
    p: _Profiles,
    rdx: float,
) -> tuple[torch.Tensor, ...]:
    """One internal time step; returns ``(u_next, u, psi_y, psi_x, zeta_y, zeta_x)``.
    The source adds ``source_scale [n, shots, 1, 1] * wavelet_t`` where ``onehot
    [1, shots, H, W]`` is 1 (broadcast, so no full-size source field is read)."""
    rdx2 = rdx * rdx
    du_y, du_x = _d1(u, -2, rdx), _d1(u, -1, rdx)
    tmp_y = p.by1 * _d2(u, -2, rdx2) + p.dby * du_y + _d1(p.ay * psi_y, -2, rdx)
    tmp_x = p.bx1 * _d2(u, -1, rdx2) + p.dbx * du_x + _d1(p.ax * psi_x, -1, rdx)
    w = (p.by1 * tmp_y + p.ay * zeta_y) + (p.bx1 * tmp_x + p.ax * zeta_x)
    u_next = v2dt2 * w + 2 * u - u_prev + source_scale * wavelet_t * onehot
    return (
        u_next,
        u,
        p.by * du_y + p.ay * psi_y,
        p.bx * du_x + p.ax * psi_x,
        p.by * tmp_y + p.ay * zeta_y,
        p.bx * tmp_x + p.ax * zeta_x,
    )


class BatchedPropagator:
    """Forward-model many velocity maps at once on ``device``.

    ``compile=True`` runs the step through ``torch.compile`` (CUDA: one fused kernel or a
    few instead of about forty); if compiling fails the eager step is used and
    ``compiled`` says so."""

    def __init__(
        self,
        geometry: Geometry = CONTRACT,
        device: torch.device | str = "cpu",
        compile: bool = False,
        max_vel: float | None = None,
    ) -> None:
        if geometry.accuracy != 4:
            raise ValueError(f"accuracy={geometry.accuracy}: this propagator implements 4 only")
        self.geometry = geometry
        self.device = torch.device(device)
        self.max_vel = geometry.v_max if max_vel is None else float(max_vel)
        self.ratio = step_ratio(geometry, self.max_vel)
        self.dt = geometry.dt_s / self.ratio
        self.pad = geometry.pml_width + geometry.accuracy // 2
        self.shape = (geometry.nz + 2 * self.pad, geometry.nx + 2 * self.pad)

        def profile(axis: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
            a, b, db = cpml_profile(self.shape[axis], geometry, self.dt, self.max_vel)
            return [t.to(torch.float32).reshape(shape).to(self.device) for t in (a, 1 + b, b, db)]

        self.profiles = _Profiles(*profile(0, (1, 1, -1, 1)), *profile(1, (1, 1, 1, -1)))
        wavelet = upsample(ricker(geometry).to(torch.float64), self.ratio).to(torch.float32)
        self.wavelet = wavelet.to(self.device)
        rows = torch.full((geometry.n_shots,), geometry.source_row + self.pad)
        self.source_rows = rows.to(self.device)
        self.source_cols = (torch.tensor(geometry.source_columns) + self.pad).to(self.device)
        self.receiver_row = geometry.receiver_row + self.pad
        self.receiver_cols = (torch.tensor(geometry.receiver_columns) + self.pad).to(self.device)
        # One-hot source positions [1, shots, H, W]: the injection becomes an elementwise
        # term of the step, which compiles into the same kernel.
        onehot = torch.zeros(1, geometry.n_shots, *self.shape)
        onehot[0, torch.arange(geometry.n_shots), rows, self.source_cols.cpu()] = 1
        self.source_onehot = onehot.to(self.device)
        self.step: Callable[..., tuple[torch.Tensor, ...]] = _step
        self.compiled = False
        if compile:
            self.step = torch.compile(_step, dynamic=False)
            self.compiled = True
            self._first = True

    def _padded(self, velocity: torch.Tensor) -> torch.Tensor:
        v = velocity.to(self.device, torch.float32)
        if v.ndim == 3:
            v = v[:, None]
        if (
            v.ndim != 4
            or v.shape[1] != 1
            or tuple(v.shape[2:])
            != (
                self.geometry.nz,
                self.geometry.nx,
            )
        ):
            raise ValueError(
                f"velocity shape {tuple(velocity.shape)}: expected [n, 1, "
                f"{self.geometry.nz}, {self.geometry.nx}] or [n, {self.geometry.nz}, "
                f"{self.geometry.nx}]"
            )
        return F.pad(v, (self.pad,) * 4, mode="replicate")

    @torch.no_grad()
    def __call__(self, velocity: torch.Tensor) -> torch.Tensor:
        """``velocity`` ``[n, 1, nz, nx]`` or ``[n, nz, nx]`` in m/s -> receiver data
        ``[n, shots, nt, receivers]`` float32 on this propagator's device."""
        v = self._padded(velocity)
        n, shots = v.shape[0], self.geometry.n_shots
        v2dt2 = v**2 * self.dt**2
        # -v(source)^2 dt^2 per map and shot, times the wavelet, placed by the one-hot.
        v_src = v[:, 0, self.source_rows, self.source_cols]  # [n, shots]
        scale = (-(v_src**2) * self.dt**2)[:, :, None, None]
        fields = [torch.zeros(n, shots, *self.shape, device=self.device) for _ in range(6)]
        u, u_prev, psi_y, psi_x, zeta_y, zeta_x = fields
        steps = self.geometry.nt * self.ratio
        traces = torch.empty(steps, n, shots, len(self.receiver_cols), device=self.device)
        rdx = 1 / self.geometry.spacing_m
        if self.compiled and self._first:
            self._first = False
            try:  # compile now, on this batch's shapes; a compiler problem costs speed only
                self.step(
                    *fields, v2dt2, scale, self.source_onehot, self.wavelet[0], self.profiles, rdx
                )
            except Exception as exc:
                warnings.warn(
                    f"torch.compile failed ({type(exc).__name__}: {exc}); stepping eagerly",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.step, self.compiled = _step, False
        for t in range(steps):
            traces[t] = u[:, :, self.receiver_row, self.receiver_cols]
            u, u_prev, psi_y, psi_x, zeta_y, zeta_x = self.step(
                u,
                u_prev,
                psi_y,
                psi_x,
                zeta_y,
                zeta_x,
                v2dt2,
                scale,
                self.source_onehot,
                self.wavelet[t],
                self.profiles,
                rdx,
            )
        # [steps, n, shots, receivers] -> [n, shots, receivers, steps] -> downsample time.
        data = downsample(traces.permute(1, 2, 3, 0), self.ratio)
        return data.transpose(2, 3).contiguous()
