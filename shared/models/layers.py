"""Building blocks shared by the networks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Conv2d", "conv_bn_act"]


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` that takes stride 1 along a dimension of size 1 whenever that gives the
    same output size: the same result, the same parameters.

    Why: PyTorch's CPU bfloat16 convolution (oneDNN, torch 2.13) returns a wrong weight
    gradient, at times NaN, for a strided 3 x 3 kernel over an input one cell wide. EPIC-Net
    with 70 devices (one receiver each) hit it on its first step under bfloat16 autocast;
    ``tests/shared/test_layers.py`` shows the case.
    """

    def _stride_for(self, size: torch.Size, padding: tuple[int, ...]) -> tuple[int, ...]:
        stride = list(self.stride)
        for i, (n, s, p, k, d) in enumerate(
            zip(size, self.stride, padding, self.kernel_size, self.dilation, strict=True)
        ):
            span = n + 2 * p - d * (k - 1) - 1  # output size is span // stride + 1
            if n == 1 and s > 1 and span == 0:  # one cell out, whatever the stride
                stride[i] = 1
        return tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.padding, str) or self.padding_mode != "zeros":
            return super().forward(x)
        stride = self._stride_for(x.shape[-2:], self.padding)
        if stride == tuple(self.stride):
            return super().forward(x)
        return F.conv2d(x, self.weight, self.bias, stride, self.padding, self.dilation, self.groups)


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
        Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
        nn.BatchNorm2d(c_out),
        act if act is not None else nn.LeakyReLU(0.2, inplace=True),
    )
