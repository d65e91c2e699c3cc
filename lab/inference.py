"""What training and evaluation share: the compute device, the input pipeline, the figures.

Datasets are read raw (file units, m/s) and normalized here, on the compute device, with the
model's own ``Normalization`` and device partition: exactly what each edge computes on its
own receivers, and it lets augmentation flip raw data first (see ``epic.lab.train.augment``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from epic.shared import map_quality
from epic.shared.models.base import FWIModel

__all__ = ["Figures", "normalize", "resolve_device"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when there is one, else the CPU; asking for absent CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r}: use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: use auto, cpu or cuda")
    return device


def normalize(
    model: FWIModel, data: torch.Tensor, velocity: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw data and m/s maps -> what the network reads and predicts."""
    norm = model.normalization
    return norm.data(data, model.blocks), norm.velocity(velocity)


@dataclass
class Figures:
    """Running sums of per-sample SSIM, MAE and RMSE (m/s), reported as means."""

    samples: int = 0
    sums: dict[str, float] = field(default_factory=lambda: {"ssim": 0.0, "mae": 0.0, "rmse": 0.0})

    def add(self, pred_ms: torch.Tensor, true_ms: torch.Tensor) -> None:
        pred_ms, true_ms = pred_ms.float(), true_ms.float()
        self.sums["ssim"] += float(map_quality.ssim(pred_ms, true_ms).sum())
        self.sums["mae"] += float(map_quality.mae(pred_ms, true_ms).sum())
        self.sums["rmse"] += float(map_quality.rmse(pred_ms, true_ms).sum())
        self.samples += len(pred_ms)

    def means(self) -> dict[str, float]:
        n = max(self.samples, 1)
        return {key: value / n for key, value in self.sums.items()}
