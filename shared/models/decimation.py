"""Anti-aliased decimation in time: the first thing an edge encoder does.

Why: the contract samples 1000 steps of 1 ms (Nyquist 500 Hz), but the source is a 15 Hz
Ricker wavelet whose amplitude spectrum, ``(f/15)^2 exp(1 - (f/15)^2)``, is below 1e-3 of
its peak above 50 Hz and below 1e-6 above 65 Hz. Eight in every nine samples carry nothing
the network can use, and every convolution after them pays for all of them. A windowed-sinc
low-pass (fixed, not learned: it is signal processing, not a feature) then keeping one
sample in ``factor`` cuts the encoder's work by about ``factor`` and loses what lies above
the new Nyquist frequency only (``docs/training.md`` shows the spectrum and the loss).

The filter is a plain convolution, so it exports to ONNX with the rest of the encoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TimeDecimation", "lowpass_taps"]


def lowpass_taps(factor: int, cutoff: float = 0.8, half_width: int = 4) -> torch.Tensor:
    """Hann-windowed sinc low-pass for decimation by ``factor``: ``2 * half_width * factor
    + 1`` taps, pass band up to ``cutoff`` of the new Nyquist frequency, unit DC gain."""
    if factor < 1:
        raise ValueError(f"factor={factor}: must be >= 1")
    n = half_width * factor
    t = torch.arange(-n, n + 1, dtype=torch.float64)
    fc = cutoff / factor  # cycles per input sample, relative to the input's Nyquist
    h = fc * torch.sinc(fc * t) * (0.5 + 0.5 * torch.cos(math.pi * t / (n + 1)))
    return (h / h.sum()).float()


class TimeDecimation(nn.Module):
    """``[B, channels, T, r]`` -> ``[B, channels, ceil(T / factor), r]``: low-pass each
    trace, keep one sample in ``factor``. ``factor=1`` passes the input through unchanged."""

    taps: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, factor: int, channels: int) -> None:
        super().__init__()
        self.factor, self.channels = factor, channels
        # One filter per channel as a grouped convolution of fixed shape (an ONNX export
        # needs the kernel's shape). Not persistent: it follows from ``factor``, which the
        # model's hparams record.
        self.register_buffer("taps", self._taps(), persistent=False)

    def _taps(self) -> torch.Tensor:
        return lowpass_taps(self.factor).reshape(1, 1, -1, 1).repeat(self.channels, 1, 1, 1)

    def reset_buffers(self) -> None:
        """Fill ``taps`` again: a module built on the meta device and materialized with
        ``to_empty`` (as an edge loads its encoder) holds uninitialized memory there, and
        no state dict carries a non-persistent buffer."""
        with torch.no_grad():
            self.taps.copy_(self._taps().to(self.taps.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        pad = self.taps.shape[2] // 2
        return F.conv2d(
            x, self.taps.to(x.dtype), stride=(self.factor, 1), padding=(pad, 0), groups=x.shape[1]
        )
