"""What every network of EPIC declares, and the split the deployment relies on.

A model is N per-device encoders (each a separable ``nn.Module`` that an edge runs alone on
its own receivers) and one central decoder that takes the latents of the present devices.
Subclasses say how; the base holds the geometry, the device partition and the
normalization, so the runtime on edge and centre needs nothing else to run them.

Shapes (B batch, S shots, T time steps, r_i receivers of device i):

* ``encoder(i)(x_i)``: ``[B, S, T, r_i]`` normalized -> the latent ``[B, *latent_shape(i)]``;
* ``decode(latents, present)``: a list of N latents (anything, zeros say, where a device is
  missing) and ``present`` ``[B, N]`` bool -> ``[B, 1, nz, nx]`` normalized velocity in
  [-1, 1]. A missing device's latent must not change the output.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from epic.shared.data.normalization import Normalization
from epic.shared.geometry import CONTRACT, Geometry
from epic.shared.partition import device_blocks

__all__ = ["FWIModel"]


class FWIModel(nn.Module, ABC):
    name: ClassVar[str]
    PRESETS: ClassVar[dict[str, dict[str, Any]]]

    def __init__(
        self,
        n_devices: int,
        preset: str,
        geometry: Geometry = CONTRACT,
        normalization: Normalization | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__()
        if preset not in self.PRESETS:
            raise ValueError(f"preset={preset!r}: {self.name} has {', '.join(self.PRESETS)}")
        self.preset = preset
        self.geometry = geometry
        self.blocks = device_blocks(n_devices, geometry.n_receivers)
        self.normalization = normalization or Normalization()
        unknown = set(overrides) - set(self.PRESETS[preset])
        if unknown:
            raise ValueError(f"unknown {self.name} option(s): {', '.join(sorted(unknown))}")
        self.hparams: dict[str, Any] = {**self.PRESETS[preset], **overrides}

    @property
    def n_devices(self) -> int:
        return len(self.blocks)

    @abstractmethod
    def encoder(self, i: int) -> nn.Module:
        """Device ``i``'s encoder, runnable alone."""

    @abstractmethod
    def latent_shape(self, i: int) -> tuple[int, ...]:
        """Shape of one sample's latent from device ``i``."""

    @abstractmethod
    def decode(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        """Latents of all devices and the ``[B, N]`` presence mask -> normalized map."""

    def split(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[B, S, T, receivers]`` -> each device's block."""
        return [x[..., b.start : b.stop] for b in self.blocks]

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.encoder(i)(part) for i, part in enumerate(self.split(x))]

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        if present is None:
            present = torch.ones(x.shape[0], self.n_devices, dtype=torch.bool, device=x.device)
        return self.decode(self.encode(x), present)

    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (weights aside)."""
        return {
            "model": self.name,
            "preset": self.preset,
            "n_devices": self.n_devices,
            "hparams": dict(self.hparams),
            "geometry": self.geometry.to_dict(),
            "normalization": self.normalization.to_dict(),
        }
