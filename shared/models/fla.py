"""FLA, the fully local baseline: each device inverts its own receivers for its own columns.

Device ``i`` runs a whole InversionNet-style model on its block: the encoder down to one
vector, then a decoder that widens InversionNet's 5 x 5 seed to the block's width and
doubles depth only, so it makes exactly the strip ``[1, nz, r_i]`` under its receivers
(all devices together cost about one full-width decoder, whatever N). The centre only
stitches the strips west to east, a missing device's columns at 0, mid-range.
"""

from __future__ import annotations

from math import ceil
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from epic.shared.models.base import FWIModel
from epic.shared.models.inversionnet import (
    DECODED,
    BlockEncoder,
    conv_block,
    deconv_block,
    dim_keys,
    dims_of,
    masked_latents,
)

__all__ = ["FLA"]

SEED = 5  # InversionNet's decoder starts from 5 x 5


class StripDecoder(nn.Module):
    """``[B, latent, 1, 1]`` -> ``[B, 1, nz, width]`` in [-1, 1]."""

    def __init__(self, latent: int, dims: tuple[int, ...], nz: int, width: int) -> None:
        super().__init__()
        if nz > DECODED:
            raise ValueError(f"nz={nz}: the decoder makes at most {DECODED} rows")
        d1, d2, d3, d4, d5 = dims
        self.nz, self.width = nz, width
        self.seed = nn.Sequential(deconv_block(latent, d5, SEED, 1, 0), conv_block(d5, d5))
        stages: list[nn.Module] = []
        for cin, cout in ((d5, d4), (d4, d3), (d3, d2), (d2, d1)):
            # Kernel 4 x 3, stride 2 x 1: depth doubles, the strip's width stays.
            stages += [deconv_block(cin, cout, (4, 3), (2, 1), (1, 1)), conv_block(cout, cout)]
        self.up = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.Conv2d(d1, 1, 3, 1, 1), nn.BatchNorm2d(1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(
            self.seed(z), size=(SEED, self.width), mode="bilinear", align_corners=False
        )
        x = self.up(x)
        top = (DECODED - self.nz) // 2
        return self.head(x[:, :, top : top + self.nz])


class FLA(FWIModel):
    """N independent encoder-decoders, each predicting the columns under its receivers."""

    name = "fla"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Half InversionNet's widths: each device holds a whole model, N of them in all.
        "paper": {**dim_keys(16, 32, 64, 128, 256), "t_kernel": 7, "t_stride": 2, "latent": 256},
        "lite": {**dim_keys(4, 8, 16, 32, 64), "t_kernel": 9, "t_stride": 4, "latent": 64},
    }

    def __init__(self, n_devices: int, preset: str = "lite", **kwargs: Any) -> None:
        super().__init__(n_devices, preset, **kwargs)
        h, g = self.hparams, self.geometry
        if g.receiver_columns != tuple(range(g.nx)):
            raise ValueError("FLA needs one receiver per map column (receiver j at column j)")
        dims = dims_of(h)
        # Encoders pool receivers to the widest block's ceil(r / 8) columns, as in SLA.
        width = ceil(max(len(b) for b in self.blocks) / 8)
        self.encoders = nn.ModuleList(
            nn.Sequential(
                BlockEncoder(
                    g.n_shots, g.nt, len(b), dims, h["t_kernel"], h["t_stride"], h["latent"], width
                ),
                StripDecoder(h["latent"], dims, g.nz, len(b)),
            )
            for b in self.blocks
        )

    def encoder(self, i: int) -> nn.Module:
        return self.encoders[i]

    def latent_shape(self, i: int) -> tuple[int, ...]:
        return (1, self.geometry.nz, len(self.blocks[i]))

    def decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return torch.cat(masked_latents(self, latents, present), dim=-1)
