"""EPIC-Net's centre: self-attention fusion and position-aware cross-attention.

Missing devices are masked out of every attention (``key_padding_mask``) and of every
pooling, and their latents are zeroed first: a NaN in a missing device's latent would
otherwise reach the output through a zero attention weight (0 x NaN = NaN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DevicePosition", "Fusion", "PositionalCrossAttention"]


class DevicePosition(nn.Module):
    """Embedding of where a device's block lies on the line (centre and width, as
    fractions of the line), through Fourier features: the same weights serve any number
    of devices, so the architecture does not change with N."""

    freqs: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, d_model: int, n_freqs: int = 8) -> None:
        super().__init__()
        self.register_buffer(
            "freqs", math.pi * torch.arange(1, n_freqs + 1).float(), persistent=False
        )
        self.mlp = nn.Sequential(
            nn.Linear(4 * n_freqs, d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )

    def forward(self, centre: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
        """``centre``, ``width``: ``[N]`` in [0, 1] -> ``[N, d_model]``."""
        parts = [
            f(v[:, None] * self.freqs) for v in (centre, width) for f in (torch.sin, torch.cos)
        ]
        return self.mlp(torch.cat(parts, dim=1))


class Fusion(nn.Module):
    """Self-attention over the tokens of all present devices."""

    def __init__(self, d_model: int, heads: int, layers: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, heads, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        # Nested tensors would drop masked tokens from the output shape in eval mode only.
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """``tokens`` ``[B, K, d]``, ``missing`` ``[B, K]`` bool -> ``[B, K, d]``."""
        return self.norm(self.encoder(tokens, src_key_padding_mask=missing))


class PositionalCrossAttention(nn.Module):
    """Map features ask the device tokens what lies at their position.

    Queries: the features concatenated with learned output-space position embeddings,
    bilinearly resized to the features' resolution; keys and values: the fused tokens.
    The answer is added to the features (a residual), so a block can ignore it.
    """

    def __init__(
        self, channels: int, d_model: int, pos: nn.Parameter, heads: int, d_attn: int
    ) -> None:
        super().__init__()
        self.pos = pos  # [1, P, H0, W0], shared by every block
        self.query = nn.Linear(channels + pos.shape[1], d_attn)
        self.attn = nn.MultiheadAttention(
            d_attn, heads, batch_first=True, kdim=d_model, vdim=d_model
        )
        self.out = nn.Linear(d_attn, channels)
        nn.init.zeros_(self.out.weight)  # start as identity: the conv path trains first
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        pos = F.interpolate(self.pos, size=(h, w), mode="bilinear", align_corners=False)
        queries = torch.cat([x, pos.expand(b, -1, -1, -1)], dim=1).flatten(2).transpose(1, 2)
        answer, _ = self.attn(
            self.query(queries), tokens, tokens, key_padding_mask=missing, need_weights=False
        )
        return x + self.out(answer).transpose(1, 2).reshape(b, c, h, w)
