"""SLA, the split-learning baseline: InversionNet cut between its encoder and decoder.

Each device runs InversionNet's encoder on its own receivers down to one vector of
``latent`` channels; the centre concatenates the N vectors (zeros for a missing device),
maps them to InversionNet's bottleneck with a 1 x 1 convolution, and runs InversionNet's
decoder. With one device it is InversionNet plus that 1 x 1 convolution.
"""

from __future__ import annotations

from math import ceil
from typing import Any, ClassVar

import torch
from torch import nn

from epic.shared.models.base import FWIModel
from epic.shared.models.inversionnet import (
    BlockEncoder,
    Decoder,
    conv_block,
    dim_keys,
    dims_of,
    masked_latents,
)

__all__ = ["SLA"]


class SLA(FWIModel):
    """Per-device InversionNet encoders, latents concatenated into InversionNet's decoder."""

    name = "sla"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {**dim_keys(32, 64, 128, 256, 512), "t_kernel": 7, "t_stride": 2, "latent": 512},
        "lite": {**dim_keys(8, 16, 32, 64, 128), "t_kernel": 9, "t_stride": 4, "latent": 64},
    }

    def __init__(self, n_devices: int, preset: str = "lite", **kwargs: Any) -> None:
        super().__init__(n_devices, preset, **kwargs)
        h, g = self.hparams, self.geometry
        dims = dims_of(h)
        # The encoder's three receiver-striding convolutions leave ceil(r / 8) columns: the
        # widest block's count is the pooled width, so one receiver (N = 70) still works and
        # N = 1 keeps InversionNet's own 8 x 9 kernel.
        width = ceil(max(len(b) for b in self.blocks) / 8)
        self.encoders = nn.ModuleList(
            BlockEncoder(
                g.n_shots, g.nt, len(b), dims, h["t_kernel"], h["t_stride"], h["latent"], width
            )
            for b in self.blocks
        )
        self.fuse = conv_block(self.n_devices * h["latent"], dims[4], 1, 1, 0)
        self.decoder = Decoder(dims, g.nz, g.nx)

    def encoder(self, i: int) -> nn.Module:
        return self.encoders[i]

    def latent_shape(self, i: int) -> tuple[int, ...]:
        return (self.hparams["latent"], 1, 1)

    def decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fuse(torch.cat(masked_latents(self, latents, present), dim=1)))
