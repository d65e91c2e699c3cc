"""EPIC-Net's device encoder: what one edge device runs on its own receivers.

Shots are input channels. Time is first decimated with an anti-aliasing low-pass
(``decimate``: 1000 samples of 1 ms carry nothing above the 15 Hz wavelet's band,
``epic.shared.models.decimation``), then downsampled further with time-only kernels, as
InversionNet starts; then 3 x 3 kernels mix neighbouring receivers, and an adaptive pool
makes a fixed grid of tokens, so the same encoder works for a block of 1 receiver or 35.
The tokens end in tanh: bounded latents quantize to int8 with a fixed scale and lose
almost nothing. With a wire code (``wire_dims``, fitted after training:
``epic.shared.models.wire_code``) the encoder sends k coordinates in place of the tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from epic.shared.models.decimation import TimeDecimation
from epic.shared.models.layers import conv_bn_act
from epic.shared.models.wire_code import WireEncoder

__all__ = ["DeviceEncoder"]


class DeviceEncoder(nn.Module):
    """``[B, shots, T, r]`` -> ``[B, tokens, d_model]`` in (-1, 1), or ``[B, wire_dims]``."""

    def __init__(
        self,
        shots: int,
        channels: tuple[int, int, int, int],
        time_stride: int,
        token_grid: tuple[int, int],
        d_model: int,
        decimate: int = 1,
        wire_dims: int = 0,
    ) -> None:
        super().__init__()
        c0, c1, c2, c3 = channels
        # Outside ``features``, whose layer numbering checkpoints' weights follow.
        self.decimation = TimeDecimation(decimate, shots)
        self.features = nn.Sequential(
            conv_bn_act(shots, c0, (7, 1), (time_stride, 1), (3, 0)),
            conv_bn_act(c0, c1, (3, 1), (2, 1)),
            conv_bn_act(c1, c1, (3, 1)),
            conv_bn_act(c1, c2, (3, 3), (2, 2)),
            conv_bn_act(c2, c2, 3),
            conv_bn_act(c2, c3, (3, 3), (2, 2)),
            conv_bn_act(c3, c3, 3),
            nn.AdaptiveAvgPool2d(token_grid),
        )
        self.project = nn.Linear(c3, d_model)
        self.n_tokens = token_grid[0] * token_grid[1]
        self.d_model = d_model
        self.wire = WireEncoder(self.n_tokens * d_model, wire_dims) if wire_dims else None

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(self.decimation(x))  # [B, c3, tokens_t, tokens_x]
        return torch.tanh(self.project(f.flatten(2).transpose(1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(x)
        return tokens if self.wire is None else self.wire(tokens)
