"""How seismic data and velocity maps are scaled for the networks.

Seismic data: **per-shot amplitude scale, then signed log compression**::

    y = sign(x) * log1p(gain * |x| / s) / log1p(gain)

with ``s`` the peak absolute amplitude of that shot gather over the receivers at hand.

Why per shot rather than OpenFWI's fixed constants (``log1p`` then min-max over the whole
training set): real field data has no fixed amplitude (source strength, coupling and
instrument gain change from shot to shot and site to site), and OpenFWI's own generator
differs from deepwave's in sign and scale. A per-shot scale makes the input independent of
all of that, and needs nothing but the shot itself, so an edge device can compute it on its
own receivers (``s`` then spans that device's block: what the edge sees is exactly what
training saw when the dataset is given the same partition). The log compression keeps weak
late reflections visible next to the direct wave (``gain`` sets how much; 0.01 of the peak
maps to about 0.15).

``mode="global"`` gives OpenFWI's behaviour instead: ``s`` is one constant fitted on the
training data (its 99.9th percentile of ``|x|``) and carried with the model.

Velocity: min-max over the contract range, 1500-4500 m/s -> [-1, 1].

Every constant lives in ``Normalization`` and travels with a checkpoint (``to_dict``);
nothing here is hard-coded into a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from epic.shared.geometry import CONTRACT

if TYPE_CHECKING:  # imported where used: an edge running onnxruntime reads this without torch
    import torch

__all__ = ["Normalization"]

_EPS = 1e-12


@dataclass(frozen=True)
class Normalization:
    mode: str = "per-shot"  # or "global"
    gain: float = 100.0
    scale: float = 1.0  # used by mode="global" only; fitted on training data
    v_min: float = CONTRACT.v_min
    v_max: float = CONTRACT.v_max

    def __post_init__(self) -> None:
        if self.mode not in ("per-shot", "global"):
            raise ValueError(f"mode={self.mode!r}: must be 'per-shot' or 'global'")
        if not self.gain > 0:
            raise ValueError(f"gain={self.gain!r}: must be > 0")
        if not self.scale > 0:
            raise ValueError(f"scale={self.scale!r}: must be > 0")
        if not self.v_max > self.v_min:
            raise ValueError(f"v_max={self.v_max!r}: must exceed v_min={self.v_min!r}")

    # -- seismic data ---------------------------------------------------------------------
    def data(self, x: torch.Tensor, blocks: Sequence[range] | None = None) -> torch.Tensor:
        """Normalize ``[..., shots, time, receivers]``.

        ``blocks`` (contiguous receiver ranges, one per device) makes the per-shot scale
        span each block separately, as each edge device computes it.
        """
        if self.mode == "global":
            return self._compress(x, x.new_tensor(self.scale))
        if blocks is None:
            return self._compress(x, self._peak(x))
        import torch

        parts = [x[..., b.start : b.stop] for b in blocks]
        return torch.cat([self._compress(p, self._peak(p)) for p in parts], dim=-1)

    @staticmethod
    def _peak(x: torch.Tensor) -> torch.Tensor:
        return x.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(_EPS)

    def _compress(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return x.sign() * (self.gain * x.abs() / s).log1p() / np.log1p(self.gain)

    # -- velocity -------------------------------------------------------------------------
    def velocity(self, v: torch.Tensor) -> torch.Tensor:
        """m/s -> [-1, 1]."""
        return (v - self.v_min) / (self.v_max - self.v_min) * 2.0 - 1.0

    def velocity_inverse(self, y: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> m/s."""
        return (y + 1.0) / 2.0 * (self.v_max - self.v_min) + self.v_min

    # -- fitting and persistence ----------------------------------------------------------
    @classmethod
    def fit_global(
        cls, samples: Iterable[np.ndarray], quantile: float = 0.999, **kwargs: float
    ) -> Normalization:
        """OpenFWI-style constants: ``scale`` from the training data's ``|x|`` quantile."""
        values = [np.quantile(np.abs(np.asarray(s, dtype=np.float64)), quantile) for s in samples]
        if not values:
            raise ValueError("fit_global needs at least one sample")
        return cls(mode="global", scale=float(np.median(values)) or 1.0, **kwargs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Normalization:
        return cls(**values)
