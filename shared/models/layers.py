"""Building blocks shared by the networks."""

from __future__ import annotations

from torch import nn

__all__ = ["conv_bn_act"]


def conv_bn_act(
    c_in: int,
    c_out: int,
    kernel: int | tuple[int, int] = 3,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | None = None,
    act: nn.Module | None = None,
) -> nn.Sequential:
    """Conv -> BatchNorm -> LeakyReLU(0.2), InversionNet's unit; 'same' padding by default."""
    if padding is None:
        k = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (k[0] // 2, k[1] // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(c_out),
        act if act is not None else nn.LeakyReLU(0.2, inplace=True),
    )
