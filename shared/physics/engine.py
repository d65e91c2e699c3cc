"""Choosing the forward model: deepwave (the reference, the CPU default) or the batched
PyTorch propagator (any device, no compiled extension: the GPU machine has no deepwave)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np
import torch

from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["ENGINES", "resolve_engine", "shot_simulator"]

ENGINES = ("auto", "deepwave", "torch")

Simulator = Callable[[np.ndarray | torch.Tensor], torch.Tensor]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a finder that refuses the name outright
        return False


def resolve_engine(name: str = "auto") -> str:
    """``auto``: deepwave when it is installed, else the PyTorch propagator."""
    if name not in ENGINES:
        raise ValueError(f"propagator {name!r}: choose from {', '.join(ENGINES)}")
    if name == "auto":
        return "deepwave" if _installed("deepwave") else "torch"
    if name == "deepwave" and not _installed("deepwave"):
        raise ValueError("deepwave is not installed here: use --propagator torch")
    return name


def shot_simulator(
    name: str = "auto", device: str | torch.device = "cpu", geometry: Geometry = CONTRACT
) -> Simulator:
    """A function from velocity maps (``[n, 1, nz, nx]`` or ``[n, nz, nx]``, m/s) to shot
    gathers ``[n, shots, nt, receivers]`` float32 on the CPU."""
    if resolve_engine(name) == "deepwave":
        from epic.shared.physics.forward import simulate_shots

        return lambda maps: simulate_shots(maps, geometry, device=device)
    from epic.shared.physics.propagator import BatchedPropagator

    device = torch.device(device)
    # Eager: compiling the step pays off over tens of thousands of maps (training), not
    # over a test file's few hundred.
    propagator = BatchedPropagator(geometry, device)
    return lambda maps: propagator(torch.as_tensor(np.asarray(maps))).cpu()
