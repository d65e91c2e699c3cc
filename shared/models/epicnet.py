"""EPIC-Net: distributed encoders, self-attention fusion, position-aware cross-attention
decoder (the paper's section 3, part 2).

Each device encodes its own receivers into a few tokens (``DeviceEncoder``). The centre
tags every token with where its device sits on the line and which token of the device it
is, fuses all present tokens with self-attention, seeds a 5 x 5 map from their masked mean,
and upsamples it (bilinear, then convolution) to 9, 18, 35 and 70 cells a side; every
decoder block asks the tokens, through cross-attention with learned output-space position
queries, what lies under each of its cells. Missing devices are masked out of every
attention and pooling, so any non-empty subset decodes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from epic.shared.models.base import FWIModel
from epic.shared.models.epic_attention import DevicePosition, Fusion, PositionalCrossAttention
from epic.shared.models.epic_encoder import DeviceEncoder
from epic.shared.models.layers import conv_bn_act
from epic.shared.models.wire_code import WireDecoder

__all__ = ["EpicNet"]


class EpicNet(FWIModel):
    name = "epic"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "lite": {
            "enc_channels": (16, 32, 48, 64),
            "decimate": 8,
            "time_stride": 1,
            "token_grid": (4, 2),
            "d_model": 64,
            "heads": 4,
            "fusion_layers": 2,
            "dec_channels": (96, 64, 48, 32, 16),
            "pos_dim": 16,
            "pos_grid": 20,
            "attn_levels": 4,
            "wire_dims": 0,
        },
        # Between the two, for a GPU run: 4.7 M parameters, 9.4 MB in bfloat16 (the paper
        # preset's 19 MB does not come back from the GPU machine's 16 MiB file limit).
        "standard": {
            "enc_channels": (32, 64, 96, 128),
            "decimate": 4,
            "time_stride": 1,
            "token_grid": (8, 2),
            "d_model": 128,
            "heads": 8,
            "fusion_layers": 3,
            "dec_channels": (192, 128, 96, 64, 32),
            "pos_dim": 32,
            "pos_grid": 35,
            "attn_levels": 5,
            "wire_dims": 0,
        },
        "paper": {
            "enc_channels": (32, 64, 128, 256),
            "decimate": 4,
            "time_stride": 1,
            "token_grid": (8, 2),
            "d_model": 128,
            "heads": 8,
            "fusion_layers": 4,
            "dec_channels": (256, 192, 128, 64, 32),
            "pos_dim": 32,
            "pos_grid": 35,
            "attn_levels": 5,
            "wire_dims": 0,
        },
    }

    # Checkpoints written before these options existed had no time decimation and
    # cross-attention in every decoder block.
    LEGACY: ClassVar[dict[str, Any]] = {"decimate": 1, "attn_levels": 5, "wire_dims": 0}

    device_centre: torch.Tensor  # buffers, registered in __init__
    device_width: torch.Tensor

    def __init__(self, n_devices: int, preset: str = "lite", **kwargs: Any) -> None:
        super().__init__(n_devices, preset, **kwargs)
        h = self.hparams
        d, shots = h["d_model"], self.geometry.n_shots
        encoders = [
            DeviceEncoder(
                shots,
                tuple(h["enc_channels"]),
                h["time_stride"],
                tuple(h["token_grid"]),
                d,
                h["decimate"],
                h["wire_dims"],
            )
            for _ in range(n_devices)
        ]
        self.encoders = nn.ModuleList(encoders)
        self.n_tokens = encoders[0].n_tokens
        # The wire code's centre half (0: the tokens travel as they are).
        self.unwire = (
            nn.ModuleList(WireDecoder(self.n_tokens, d, h["wire_dims"]) for _ in range(n_devices))
            if h["wire_dims"]
            else None
        )
        n_rec = self.geometry.n_receivers
        centre = torch.tensor([(b.start + b.stop - 1) / 2 / max(n_rec - 1, 1) for b in self.blocks])
        width = torch.tensor([len(b) / n_rec for b in self.blocks])
        self.register_buffer("device_centre", centre, persistent=False)
        self.register_buffer("device_width", width, persistent=False)
        self.device_position = DevicePosition(d)
        self.token_position = nn.Parameter(torch.zeros(self.n_tokens, d))
        nn.init.normal_(self.token_position, std=0.02)
        self.fusion = Fusion(d, h["heads"], h["fusion_layers"])

        chans = tuple(h["dec_channels"])
        # Halve the map size per block from the top: 70 -> 35 -> 18 -> 9 -> 5 (no crop).
        nz, nx = self.geometry.nz, self.geometry.nx
        levels = len(chans)
        self.sizes = [(-(-nz // 2**k), -(-nx // 2**k)) for k in range(levels - 1, -1, -1)]
        self.seed = nn.Linear(d, chans[0] * self.sizes[0][0] * self.sizes[0][1])
        pos = nn.Parameter(torch.zeros(1, h["pos_dim"], h["pos_grid"], h["pos_grid"]))
        nn.init.normal_(pos, std=0.02)
        self.output_position = pos
        self.blocks_up = nn.ModuleList()
        self.blocks_conv = nn.ModuleList()
        self.blocks_attn = nn.ModuleList()
        # Cross-attention in the coarse ``attn_levels`` blocks only: a fine block has
        # thousands of queries (4,900 at 70 x 70), and its cells mostly refine edges that
        # the convolutions carry up from the coarse levels.
        for i, c in enumerate(chans):
            if i == 0:
                self.blocks_up.append(nn.Identity())
            else:
                self.blocks_up.append(
                    nn.Sequential(
                        nn.Upsample(size=self.sizes[i], mode="bilinear", align_corners=False),
                        conv_bn_act(chans[i - 1], c),
                    )
                )
            self.blocks_conv.append(conv_bn_act(c, c))
            # Attention width follows the block's channels: the fine blocks have thousands
            # of queries, and a full-width attention there would cost more than the rest.
            d_attn = min(d, max(16, 2 * c))
            heads = max(1, min(h["heads"], d_attn // 8))
            if i < h["attn_levels"]:
                self.blocks_attn.append(PositionalCrossAttention(c, d, pos, heads, d_attn))
            else:
                # A placeholder keeping the blocks' indices (and so the checkpoints' keys):
                # ModuleList.append is typed Module, but add_module, which it calls, takes None.
                self.blocks_attn.append(None)  # type: ignore[arg-type]
        self.head = nn.Conv2d(chans[-1], 1, 3, padding=1)

    # -- the edge's half ------------------------------------------------------------------
    def encoder(self, i: int) -> nn.Module:
        return self.encoders[i]

    def latent_shape(self, i: int) -> tuple[int, ...]:
        if self.unwire is not None:
            return (self.hparams["wire_dims"],)
        return (self.n_tokens, self.hparams["d_model"])

    # -- the centre's half ----------------------------------------------------------------
    def decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        if len(latents) != self.n_devices:
            raise ValueError(f"{len(latents)} latents for {self.n_devices} devices")
        present = present.to(torch.bool)
        if not present.any(dim=1).all():
            raise ValueError("every sample needs at least one present device")
        if self.unwire is not None:
            latents = [unwire(z) for unwire, z in zip(self.unwire, latents, strict=True)]
        tokens = torch.stack(latents, dim=1)  # [B, N, T, d]
        tokens = torch.where(present[:, :, None, None], tokens, torch.zeros_like(tokens))
        where = self.device_position(self.device_centre, self.device_width)  # [N, d]
        tokens = tokens + where[None, :, None, :] + self.token_position[None, None]
        b, n, t, d = tokens.shape
        tokens = tokens.reshape(b, n * t, d)
        missing = (~present).repeat_interleave(t, dim=1)  # [B, N*T]
        fused = self.fusion(tokens, missing)

        keep = (~missing).unsqueeze(-1).to(fused.dtype)
        pooled = (fused * keep).sum(dim=1) / keep.sum(dim=1)
        x = self.seed(pooled).reshape(b, -1, *self.sizes[0])
        for up, conv, attn in zip(self.blocks_up, self.blocks_conv, self.blocks_attn, strict=True):
            x = conv(up(x))
            if attn is not None:
                x = attn(x, fused, missing)
        return torch.tanh(self.head(x))
