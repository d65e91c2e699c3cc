"""InversionNet, OpenFWI's centralized baseline, and the blocks its split variants reuse.

The ``paper`` preset is OpenFWI's InversionNet layer for layer (same parameter count); the
``lite`` preset is the same code with narrow channels and a first convolution that strides
4 in time, so that it trains on a laptop CPU. In EPIC's system the network sits at the
centre: every device sends its raw block of receivers, the centre concatenates them
(zeros for a missing device, the only thing a centralized model can do) and runs it whole.

SLA and FLA reuse :class:`BlockEncoder` (InversionNet's encoder on any number of
receivers), the blocks and the masking here; SLA reuses :class:`Decoder` too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from epic.shared.models.base import FWIModel

__all__ = [
    "DECODED",
    "BlockEncoder",
    "Decoder",
    "InversionNet",
    "conv_block",
    "deconv_block",
    "dim_keys",
    "dims_of",
    "masked",
    "masked_latents",
]

Size = int | tuple[int, int]
# The decoder's 5 x 5 seed doubled four times; the map is cropped out of its centre.
DECODED = 80


def conv_block(
    cin: int, cout: int, kernel: Size = 3, stride: Size = 1, padding: Size = 1
) -> nn.Sequential:
    """OpenFWI's ConvBlock: convolution, batch norm, LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def deconv_block(cin: int, cout: int, kernel: Size, stride: Size, padding: Size) -> nn.Sequential:
    """OpenFWI's DeconvBlock: transposed convolution, batch norm, LeakyReLU(0.2)."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, kernel, stride, padding),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def dims_of(hparams: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """OpenFWI's ``dim1`` ... ``dim5`` (flat keys, so a config round-trips through JSON)."""
    return tuple(int(hparams[f"dim{k}"]) for k in range(1, 6))  # type: ignore[return-value]


def conv_out_size(stack: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    """Spatial size after ``stack``'s convolutions, read off the layers themselves."""
    for m in stack.modules():
        if isinstance(m, nn.Conv2d):
            assert not isinstance(m.padding, str)  # the stacks' convolutions pad by numbers
            size = tuple(  # type: ignore[assignment]
                (n + 2 * p - k) // s + 1
                for n, k, s, p in zip(size, m.kernel_size, m.stride, m.padding, strict=True)
            )
    return size


class BlockEncoder(nn.Module):
    """InversionNet's encoder on ``[B, shots, nt, receivers]`` -> ``[B, out_ch, 1, 1]``.

    ``width=None`` is OpenFWI's: the last convolution's kernel covers the whole feature map.
    With ``width``, receivers are first average-pooled to ``width`` columns, so blocks of any
    size (one receiver included) share one kernel shape.
    """

    def __init__(
        self,
        in_ch: int,
        nt: int,
        n_receivers: int,
        dims: tuple[int, ...],
        t_kernel: int,
        t_stride: int,
        out_ch: int,
        width: int | None = None,
    ) -> None:
        super().__init__()
        d1, d2, d3, d4 = dims[:4]
        # Time-only convolutions first (OpenFWI's blocks 1 to 4_2): 1000 samples carry far
        # more than 70 receivers. (in, out, time stride) of blocks 2_1 ... 4_2:
        layers = [conv_block(in_ch, d1, (t_kernel, 1), (t_stride, 1), (t_kernel // 2, 0))]
        for cin, cout, s in (
            (d1, d2, 2),
            (d2, d2, 1),
            (d2, d2, 2),
            (d2, d2, 1),
            (d2, d3, 2),
            (d3, d3, 1),
        ):
            layers.append(conv_block(cin, cout, (3, 1), (s, 1), (1, 0)))
        for cin, cout in ((d3, d3), (d3, d4), (d4, d4)):  # blocks 5 to 7: 3 x 3, stride 2, 1
            layers += [conv_block(cin, cout, stride=2), conv_block(cout, cout)]
        self.stack = nn.Sequential(*layers)
        t, r = conv_out_size(self.stack, (nt, n_receivers))
        self.pool = nn.Identity() if width is None else nn.AdaptiveAvgPool2d((t, width))
        self.head = conv_block(d4, out_ch, (t, r if width is None else width), 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stack(x)))


class Decoder(nn.Module):
    """InversionNet's decoder: ``[B, dim5, 1, 1]`` -> ``[B, 1, nz, nx]`` in [-1, 1]."""

    def __init__(self, dims: tuple[int, ...], nz: int, nx: int) -> None:
        super().__init__()
        if not (nz <= DECODED and nx <= DECODED):
            raise ValueError(f"map {nz} x {nx}: InversionNet's decoder makes at most 80 x 80")
        d1, d2, d3, d4, d5 = dims
        self.nz, self.nx = nz, nx
        layers = [deconv_block(d5, d5, 5, 1, 0), conv_block(d5, d5)]
        for cin, cout in ((d5, d4), (d4, d3), (d3, d2), (d2, d1)):
            layers += [deconv_block(cin, cout, 4, 2, 1), conv_block(cout, cout)]
        self.up = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(d1, 1, 3, 1, 1), nn.BatchNorm2d(1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.up(z)
        top, left = (DECODED - self.nz) // 2, (DECODED - self.nx) // 2
        return self.head(x[..., top : top + self.nz, left : left + self.nx])


def masked(
    latent: torch.Tensor | None, keep: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """``latent`` where ``keep`` (``[B]`` bool) holds, exact zeros elsewhere.

    ``torch.where`` rather than a product, so that whatever stands in for an absent device
    (NaN, inf, garbage) cannot leak; a device absent from the whole batch may send anything
    at all, even None or a wrong shape.
    """
    expected = (keep.shape[0], *shape)
    if latent is None or tuple(latent.shape) != expected:
        if bool(keep.any()):
            got = None if latent is None else tuple(latent.shape)
            raise ValueError(f"latent of shape {got} for a present device, expected {expected}")
        return torch.zeros(expected, dtype=dtype, device=keep.device)
    return torch.where(keep.view(-1, *[1] * len(shape)), latent, 0.0)


def masked_latents(
    model: FWIModel, latents: list[torch.Tensor], present: torch.Tensor
) -> list[torch.Tensor]:
    """Every device's latent, zeros for the samples it is absent from (see :func:`masked`)."""
    n = model.n_devices
    if len(latents) != n or present.dim() != 2 or present.shape[1] != n:
        raise ValueError(
            f"{len(latents)} latents and present {tuple(present.shape)} for {n} devices"
        )
    present = present.to(torch.bool)
    dtype = next(model.parameters()).dtype
    return [masked(z, present[:, i], model.latent_shape(i), dtype) for i, z in enumerate(latents)]


def dim_keys(*dims: int) -> dict[str, int]:
    """Preset entries ``dim1`` ... ``dim5``, OpenFWI's names for the five widths."""
    return {f"dim{k}": d for k, d in enumerate(dims, start=1)}


class InversionNet(FWIModel):
    """Centralized: devices send raw waveforms, the centre runs OpenFWI's InversionNet."""

    name = "inversionnet"
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {**dim_keys(32, 64, 128, 256, 512), "t_kernel": 7, "t_stride": 2},
        # A first convolution striding 4 in time and a quarter of the widths: ~20x cheaper.
        "lite": {**dim_keys(8, 16, 32, 64, 128), "t_kernel": 9, "t_stride": 4},
    }

    def __init__(self, n_devices: int, preset: str = "lite", **kwargs: Any) -> None:
        super().__init__(n_devices, preset, **kwargs)
        h, g = self.hparams, self.geometry
        dims = dims_of(h)
        # Identity encoders: what a device sends is its block itself.
        self.encoders = nn.ModuleList(nn.Identity() for _ in self.blocks)
        self.net = nn.Sequential(
            BlockEncoder(
                g.n_shots, g.nt, g.n_receivers, dims, h["t_kernel"], h["t_stride"], dims[4]
            ),
            Decoder(dims, g.nz, g.nx),
        )

    def encoder(self, i: int) -> nn.Module:
        return self.encoders[i]

    def latent_shape(self, i: int) -> tuple[int, ...]:
        return (self.geometry.n_shots, self.geometry.nt, len(self.blocks[i]))

    def decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat(masked_latents(self, latents, present), dim=-1))
