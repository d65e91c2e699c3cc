"""The latent's wire code: k numbers an edge sends in place of its T x d tokens.

A device's tokens are strongly correlated: on training data almost all of their variance
lies along a few directions. After training, ``fit_wire_code`` finds those directions
(principal component analysis of the training latents, one basis per device); the edge
then sends the coordinates of its tokens along the first k of them, each divided by its
spread on the training data, so that the envelope's one int8 scale suits every coordinate.
The centre maps the k numbers back to tokens before fusion.

Both halves are fixed linear maps held as buffers, so they travel in the bundle (the edge's
in its encoder file, the centre's in ``central.pt``), count in the model hash (an edge with
another code is refused like a stale model) and export to ONNX with the networks. This is
transform coding, the idea behind JPEG's DCT, with the basis learned: zstd finds nothing
to squeeze in 512 int8 numbers (a 591 B envelope comes out at 601 B), because what they
share is linear, not repetition.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["WireDecoder", "WireEncoder", "fit_pair"]


class _Basis(nn.Module):
    mean: torch.Tensor  # buffers, registered in __init__
    axes: torch.Tensor
    spread: torch.Tensor

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        if not 1 <= k <= dim:
            raise ValueError(f"wire_dims={k}: must be 1..{dim} (the tokens hold {dim} numbers)")
        # Placeholders until fitted: the first k token numbers as they are.
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("axes", torch.eye(dim, k))
        self.register_buffer("spread", torch.ones(k))

    def set(self, mean: torch.Tensor, axes: torch.Tensor, spread: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.axes.copy_(axes)
        self.spread.copy_(spread)


class WireEncoder(_Basis):
    """The edge's half: tokens ``[B, T, d]`` -> coordinates ``[B, k]``."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return ((tokens.flatten(1) - self.mean) @ self.axes) / self.spread


class WireDecoder(_Basis):
    """The centre's half: coordinates ``[B, k]`` -> tokens ``[B, T, d]``."""

    def __init__(self, tokens: int, d: int, k: int) -> None:
        super().__init__(tokens * d, k)
        self.shape = (tokens, d)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return ((code * self.spread) @ self.axes.T + self.mean).reshape(-1, *self.shape)


@torch.no_grad()
def fit_pair(edge: WireEncoder, centre: WireDecoder, tokens: torch.Tensor) -> torch.Tensor:
    """Fit one device's pair to its training tokens ``[M, T, d]``; returns the share of the
    variance the k coordinates keep."""
    x = tokens.flatten(1).double()
    if x.shape[0] < 2:
        raise ValueError("fitting a wire code needs at least 2 samples")
    mean = x.mean(dim=0)
    # Right singular vectors of the centred data: the principal axes, largest first.
    _, sv, vh = torch.linalg.svd(x - mean, full_matrices=False)
    k = edge.axes.shape[1]
    if vh.shape[0] < k:
        raise ValueError(f"{x.shape[0]} samples cannot fit {k} directions; give more data")
    axes = vh[:k].T
    spread = (sv[:k] / (x.shape[0] - 1) ** 0.5).clamp_min(1e-6)
    for half in (edge, centre):
        half.set(mean.float(), axes.float(), spread.float())
    energy = sv.pow(2)
    return energy[:k].sum() / energy.sum()
