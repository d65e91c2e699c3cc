"""Training in several processes: ``torchrun --nproc-per-node N -m epic train ...``.

torchrun starts the processes and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; each
process joins one process group (gloo on CPU, NCCL on CUDA) and wraps its model in
``DistributedDataParallel``. Everything is arranged so that N processes train what one
process would at the same global batch (``--batch-size``), within floating-point
tolerance (``tests/lab/test_train_distributed.py``):

* **Data**: every process walks the same shuffled order; global batch k is cut into N
  slices of ``batch_size / N`` samples and process r trains on slice r (``shard_order``).
* **Randomness**: augmentation draws for the whole global batch in every process and each
  keeps its rows (``epic.lab.train.augment``, ``shard``), so the noise, mirror and device
  dropout a sample gets do not depend on N.
* **BatchNorm** statistics are those of the global batch: ``torch.nn.SyncBatchNorm`` on
  CUDA; on CPU ``GlooSyncBatchNorm`` below, because torch's refuses CPU tensors.
* **Clock**: the time budget and a time schedule follow the slowest process (``all_max``),
  so every process takes the same learning rate and stops after the same epoch.
* **Output**: process 0 logs, shows progress and writes the checkpoints; validation is
  split across the processes and its sums added up (``all_sum``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from epic.shared.errors import ConfigError

__all__ = ["GlooSyncBatchNorm", "Ranks", "shard_order", "sync_batchnorm"]


@dataclass(frozen=True)
class Ranks:
    """This process's place: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process logs and writes files."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    @classmethod
    def from_env(cls) -> Ranks:
        """torchrun's variables; one process (rank 0 of 1) without them."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        except ValueError as exc:
            raise ConfigError(f"torchrun's environment is not numbers: {exc}") from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"RANK={rank} of WORLD_SIZE={world}: not a process of the group")
        return cls(rank, world, local_rank)

    def join(self, device: torch.device) -> torch.device:
        """Join the process group (more than one process); the device this process trains
        on (its own GPU on a machine with several)."""
        if self.world == 1:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def leave(self, together: bool = True) -> None:
        """Tear the process group down; ``together`` (a run that ended well) first waits
        for every process, since one that tears gloo down while another is still in its
        last collective can abort that one ("terminate called without an active
        exception"). A failed run leaves at once: the others may never arrive."""
        if self.world > 1 and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()

    def all_sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over the processes (float64, so counts stay exact)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t)
        return t.tolist()

    def all_max(self, value: float) -> float:
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=_collective_device())
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())


def _collective_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo takes CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def local_batch(batch_size: int, ranks: Ranks) -> int:
    """Each process's share of the global batch, or a ``ConfigError`` when it does not split."""
    if batch_size % ranks.world:
        raise ConfigError(
            f"batch_size={batch_size} does not split over {ranks.world} processes: "
            f"use a multiple of {ranks.world}",
            "--batch-size",
        )
    return batch_size // ranks.world


def shard_order(order: list[int], batch_size: int, steps: int, ranks: Ranks) -> list[int]:
    """This process's samples, in order: its slice of each of the ``steps`` global batches
    of ``order``. One process keeps ``order`` whole."""
    if ranks.world == 1:
        return order
    share = batch_size // ranks.world
    mine: list[int] = []
    for step in range(steps):
        start = step * batch_size + ranks.rank * share
        mine.extend(order[start : start + share])
    return mine


class GlooSyncBatchNorm(_BatchNorm):
    """BatchNorm over the global batch on CPU: ``torch.nn.SyncBatchNorm`` raises for
    non-CUDA tensors (torch 2.13), so the per-channel sums are added up here with the
    differentiable ``torch.distributed.nn.all_reduce``. Same parameters and buffers as
    the BatchNorm it replaces, so checkpoints load into the plain model."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        synced = self.training and dist.is_initialized() and dist.get_world_size() > 1
        if not synced:
            return super().forward(input)
        from torch.distributed.nn import all_reduce  # differentiable, unlike dist.all_reduce

        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        x = input.float()
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype)
        totals = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        var = (totals[channels : 2 * channels] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None and self.num_batches_tracked is not None
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                self.running_mean.lerp_(mean.detach(), momentum)
                unbiased = var.detach() * n / (n - 1).clamp_min(1)
                self.running_var.lerp_(unbiased, momentum)
        shape = [1, channels] + [1] * (input.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every BatchNorm computing global-batch statistics."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert(model)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, GlooSyncBatchNorm):
        synced = GlooSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        synced.load_state_dict(module.state_dict())
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module
