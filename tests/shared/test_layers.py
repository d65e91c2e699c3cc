"""``epic.shared.models.layers.Conv2d``: the same output as ``nn.Conv2d`` for every input width,
and a right weight gradient under CPU bfloat16 autocast for an input one cell wide (where
``nn.Conv2d``'s was wrong, at times NaN, with torch 2.13)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from epic.shared.models.layers import Conv2d


def _pair(stride=(2, 2), c_in=8, c_out=12) -> tuple[Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    ours = Conv2d(c_in, c_out, 3, stride, 1, bias=False)
    plain = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
    plain.load_state_dict(ours.state_dict())
    return ours, plain


@pytest.mark.parametrize("width", [1, 2, 3, 7])
@pytest.mark.parametrize("stride", [(2, 2), (2, 1), (1, 2)])
def test_same_output_as_nn_conv2d(width: int, stride: tuple[int, int]) -> None:
    ours, plain = _pair(stride=stride)
    x = torch.randn(4, 8, 25, width)
    assert torch.allclose(ours(x), plain(x), atol=1e-6)
    flipped = x.transpose(-1, -2)  # a dimension of size 1 in height too
    assert torch.allclose(ours(flipped), plain(flipped), atol=1e-6)


def test_state_dict_is_nn_conv2ds() -> None:
    ours, plain = _pair()
    assert ours.state_dict().keys() == plain.state_dict().keys()


def _bf16_weight_grad(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    reference = torch.autograd.grad(conv(x).sum(), conv.weight)[0]
    with torch.autocast("cpu", torch.bfloat16):
        out = conv(x)
    return torch.autograd.grad(out.float().sum(), conv.weight)[0], reference


def _close(grad: torch.Tensor, reference: torch.Tensor) -> bool:
    # bfloat16 keeps 8 bits of mantissa: a few parts in a hundred over 16 x 63 terms
    scale = reference.abs().max().item()
    return bool(torch.isfinite(grad).all()) and torch.allclose(
        grad, reference, rtol=0.05, atol=0.05 * scale
    )


def test_one_cell_wide_weight_gradient_is_right_under_bfloat16_autocast() -> None:
    # EPIC-Net lite's encoder layer (32 -> 48 channels, 3 x 3, stride 2) on one receiver;
    # nn.Conv2d's gradient here was wrong on this project's CPUs (AVX512-BF16, torch 2.13)
    ours, _ = _pair(c_in=32, c_out=48)
    x = torch.randn(16, 32, 125, 1)
    assert _close(*_bf16_weight_grad(ours, x))
