"""Fidelity of velocity maps, as OpenFWI and the EPIC paper score them.

SSIM: Gaussian window 11, sigma 1.5, on maps scaled to [0, 1] by the 1500-4500 m/s range
(pytorch-msssim, which computes it over the valid region of the window). MAE and RMSE in m/s.
All functions take maps in m/s, ``[B, 1, H, W]``, and return one value per sample.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ssim as _ssim

from epic.shared.geometry import CONTRACT

__all__ = ["mae", "rmse", "ssim"]


def _unit(v: torch.Tensor, v_min: float, v_max: float) -> torch.Tensor:
    return ((v - v_min) / (v_max - v_min)).clamp(0.0, 1.0)


def ssim(
    pred: torch.Tensor,
    true: torch.Tensor,
    v_min: float = CONTRACT.v_min,
    v_max: float = CONTRACT.v_max,
) -> torch.Tensor:
    """Per-sample SSIM ``[B]`` of maps in m/s."""
    return _ssim(
        _unit(pred.double(), v_min, v_max),
        _unit(true.double(), v_min, v_max),
        data_range=1.0,
        win_size=11,
        win_sigma=1.5,
        size_average=False,
    )


def mae(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample mean absolute error ``[B]``, m/s."""
    return (pred - true).abs().flatten(1).mean(dim=1)


def rmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample root-mean-square error ``[B]``, m/s."""
    return (pred - true).pow(2).flatten(1).mean(dim=1).sqrt()
