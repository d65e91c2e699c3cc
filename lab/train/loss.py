"""The training loss: L1 + L2 on normalized velocities, plus, when asked, SSIM itself.

L1 keeps edges sharp and L2 punishes the large errors that hurt RMSE, but both are
minimized by the mean of the maps a gather could have come from: where an interface's
depth is uncertain they draw a ramp. SSIM, the figure a user is shown, scores local
structure and contrast and punishes that ramp; a ``(1 - SSIM)`` term, computed exactly as
``epic.shared.map_quality`` scores (Gaussian window 11, sigma 1.5, the contract's
1500-4500 m/s range), trains for it directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pytorch_msssim import ssim

from epic.shared.data.normalization import Normalization
from epic.shared.geometry import CONTRACT

__all__ = ["map_loss"]


def _unit(y: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """Normalized velocities -> the [0, 1] scale SSIM is scored on (no clamp: the gradient
    must reach maps that stray outside it)."""
    return (norm.velocity_inverse(y) - CONTRACT.v_min) / (CONTRACT.v_max - CONTRACT.v_min)


def map_loss(
    pred: torch.Tensor, y: torch.Tensor, norm: Normalization, ssim_weight: float = 0.0
) -> torch.Tensor:
    """Mean loss of a batch of predicted and true maps ``[B, 1, H, W]``, normalized as
    ``norm`` normalizes velocities, in float32."""
    pred, y = pred.float(), y.float()
    loss = F.l1_loss(pred, y) + F.mse_loss(pred, y)
    if ssim_weight:
        score = ssim(_unit(pred, norm), _unit(y, norm), data_range=1.0, win_size=11, win_sigma=1.5)
        loss = loss + ssim_weight * (1.0 - score)
    return loss
