"""Training any registered model (``epic``, ``inversionnet``, ``fla``, ``sla``) the same way,
so that their figures compare.

* Loss: L1 + L2 (MSE), equal weights, on normalized velocities ([-1, 1]), plus
  ``ssim_weight`` times (1 - SSIM) when asked (``epic.lab.train.loss``).
* Weights: random, or a trained checkpoint's (``init``, ``epic.lab.train.warm_start``).
* AdamW, with a per-step learning rate that warms up linearly over the first steps (at most
  one epoch, 200 steps) and then follows a cosine down to 1 % of ``lr`` at the last step; the
  attention layers of EPIC-Net train badly from a cold start at full rate. Gradients are
  clipped to norm ``clip``.
* A validation split held out per folder (``epic.lab.train.splits``), never trained on; the best
  epoch by validation SSIM (all devices present) is written to ``out`` with
  ``save_checkpoint``, the training state to ``lab.trainstate.last_path(out)`` every epoch.
* Augmentation and device dropout: ``epic.lab.train.augment``.
* ``max_minutes`` stops after the epoch that spends the budget (training and validation
  time, summed over resumed sessions), so runs on the same machine get the same time. With
  ``schedule="time"`` the cosine ends at whichever comes first, the last epoch's step or
  the budget, so a run stopped by the clock (a GPU lent for minutes) has still annealed its
  learning rate; such a run is not step-for-step reproducible.
* Data read from folders (``--data``) or simulated on the compute device (``--maps``,
  ``--family``: ``epic.lab.train.simulated_set``, the GPU path); both train the same way.
* Under ``torchrun``, N processes with DistributedDataParallel train what one process
  would at the same global batch (``epic.lab.train.distributed``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from epic.lab.inference import Figures, normalize
from epic.lab.train import augment
from epic.lab.train.config import (
    TrainConfig,
    attention_kernels,
    build,
    device_of,
    train_autocast,
)
from epic.lab.train.distributed import Ranks, local_batch, shard_order, sync_batchnorm
from epic.lab.train.loss import map_loss
from epic.lab.train.runmeta import check_resumable, checkpoint_meta, epoch_line
from epic.lab.train.splits import open_folders, split_folders
from epic.lab.train.state import last_path, load_state, rng_state, save_state, set_rng_state
from epic.lab.train.warm_start import warm_start
from epic.shared.errors import ConfigError
from epic.shared.models.base import FWIModel
from epic.shared.models.checkpoint import save_checkpoint

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "TrainingDiverged", "train"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says when and what to try (a bug or a bad
    learning rate rather than a user's input, hence not a ``UserError``)."""


@dataclass
class TrainResult:
    out: Path
    last: Path
    epochs_done: int
    best: dict[str, Any]
    seconds: float
    stopped_early: bool
    history: list[dict[str, Any]]
    rank: int = 0  # under torchrun: which process returned this (0 wrote the files)


def _lr_factor(
    total_steps: int, warmup: int, budget_spent: Callable[[], float] | None = None
) -> Callable[[int], float]:
    """Linear warm-up, then a cosine to 1 %; ``budget_spent`` (0..1 of the time budget)
    moves the cosine on when the clock runs faster than the steps."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if budget_spent is not None:
            progress = max(progress, min(1.0, budget_spent()))
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class _Clock:
    """Training seconds spent, resumed sessions included, against ``max_minutes``."""

    def __init__(self, max_minutes: float | None) -> None:
        self.budget = max_minutes * 60 if max_minutes else None
        self.before = 0.0
        self.started = time.perf_counter()

    def spent(self) -> float:
        """Share of the budget spent (0 without a budget)."""
        if self.budget is None:
            return 0.0
        return (self.before + time.perf_counter() - self.started) / self.budget


def _load_data(cfg: TrainConfig, device: torch.device, log: Callable[[str], None]) -> Any:
    """A split with ``train``, ``val`` and ``val_per_folder``: folders read from disk, or
    maps simulated on ``device`` (``TensorSet`` halves)."""
    if cfg.data:
        return split_folders(open_folders(cfg.data), cfg.val_fraction, cfg.seed)
    from epic.lab.train.simulated_set import map_sources, simulate_split

    sources = map_sources(cfg.maps, cfg.families, cfg.seed, cfg.maps_limit)
    return simulate_split(
        sources,
        cfg.val_fraction,
        cfg.seed,
        device,
        minutes=cfg.simulate_minutes,
        progress=cfg.progress,
        log=log,
    )


def _batches(
    part: Any,
    cfg: TrainConfig,
    device: torch.device,
    order: list[int] | None,
    drop_last: bool,
    batch: int,
) -> Any:
    """Batches of ``batch`` samples of one half of a split, in ``order`` (None: as stored)."""
    from epic.lab.train.simulated_set import TensorSet

    if isinstance(part, TensorSet):
        return part.batches(range(len(part)) if order is None else order, batch, drop_last)
    return DataLoader(
        part,
        batch,
        sampler=order,
        drop_last=drop_last,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda" and order is not None,
    )


def _generators(seed: int, epoch: int, device: torch.device) -> tuple[torch.Generator, ...]:
    """This epoch's shuffling (CPU) and augmentation (compute device) generators."""
    a, b = np.random.SeedSequence([seed, epoch]).generate_state(2)
    return (
        torch.Generator().manual_seed(int(a)),
        torch.Generator(device=device).manual_seed(int(b)),
    )


def _train_epoch(
    model: FWIModel,
    net: torch.nn.Module,
    loader: Any,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
    desc: str,
    steps: int,
    ranks: Ranks,
) -> float:
    """One pass over ``loader``; ``net`` is ``model`` or its DistributedDataParallel wrapper.
    Returns the mean training loss over every process's samples."""
    model.train()
    shard = ranks.shard
    mirror = cfg.augment and cfg.mirror and augment.mirror_offset(model.geometry) <= 1
    total, count = 0.0, 0
    dropout = cfg.device_dropout
    assert dropout is not None  # TrainConfig.__post_init__ fills it in
    bar = tqdm(loader, desc=desc, unit="batch", total=steps, leave=False, disable=not cfg.progress)
    for data, velocity in bar:
        data, velocity = data.to(device, non_blocking=True), velocity.to(device, non_blocking=True)
        if mirror:
            data, velocity = augment.mirror(data, velocity, gen, shard)
        x, y = normalize(model, data, velocity)
        if cfg.augment:
            x = augment.add_noise(x, cfg.noise, gen, shard)
        present = augment.dropout_mask(len(x), model.n_devices, dropout, gen, shard)
        with (
            attention_kernels(device),
            torch.autocast(device.type, torch.bfloat16, enabled=train_autocast(cfg, device)),
        ):
            pred = net(x, present.to(device)).float()
        loss = map_loss(pred, y, model.normalization, cfg.ssim_weight)
        # One process alone stops at once; several must not leave the others waiting in
        # the gradients' all-reduce, so they stop on the (shared) gradient norm instead.
        if ranks.world == 1 and not torch.isfinite(loss):
            raise TrainingDiverged(f"{desc}: the loss became {loss.item()}; try a lower --lr")
        opt.zero_grad(set_to_none=True)
        with attention_kernels(device):
            loss.backward()
        if cfg.clip > 0 or ranks.world > 1:
            norm = torch.nn.utils.clip_grad_norm_(
                model.parameters(), cfg.clip if cfg.clip > 0 else math.inf
            )
            if ranks.world > 1 and not torch.isfinite(norm):
                raise TrainingDiverged(
                    f"{desc}: the gradients became {norm.item()}; try a lower --lr"
                )
        opt.step()
        sched.step()
        total += loss.item() * len(x)
        count += len(x)
        bar.set_postfix(loss=f"{total / count:.4f}")
    summed, samples = ranks.all_sum([total, float(count)])
    return summed / max(samples, 1.0)


@torch.no_grad()
def _validate(
    model: FWIModel, loader: Any, cfg: TrainConfig, device: torch.device, ranks: Ranks
) -> dict[str, float]:
    """Figures over this process's share of the validation half, summed over processes."""
    model.eval()
    figures, loss_sum = Figures(), 0.0
    for data, velocity in loader:
        data, velocity = data.to(device), velocity.to(device)
        x, y = normalize(model, data, velocity)
        with torch.autocast(device.type, torch.bfloat16, enabled=cfg.amp and device.type == "cuda"):
            pred = model(x).float()
        loss_sum += float(map_loss(pred, y, model.normalization, cfg.ssim_weight)) * len(x)
        figures.add(model.normalization.velocity_inverse(pred), velocity)
    keys = list(figures.sums)
    *sums, loss_sum, samples = ranks.all_sum(
        [*figures.sums.values(), loss_sum, float(figures.samples)]
    )
    figures.sums, figures.samples = dict(zip(keys, sums, strict=True)), int(samples)
    return {
        "loss": loss_sum / max(figures.samples, 1),
        **figures.means(),
        "samples": figures.samples,
    }


def train(cfg: TrainConfig, log: Callable[[str], None] = tqdm.write) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data``; returns where the checkpoints went and the best
    validation figures. Raises ``ConfigError`` for bad settings and ``DataError`` for bad
    data or a missing state to resume; ``TrainingDiverged`` when the loss is lost. Under
    ``torchrun`` every process calls this; process 0 logs and writes the files."""
    ranks = Ranks.from_env()
    device = ranks.join(device_of(cfg))
    try:
        if not ranks.main:
            cfg, log = dataclasses.replace(cfg, progress=False), _silent
        result = _train(cfg, log, ranks, device)
    except BaseException:
        ranks.leave(together=False)
        raise
    ranks.leave()
    return result


def _silent(_: str) -> None:
    pass


def _train(
    cfg: TrainConfig, log: Callable[[str], None], ranks: Ranks, device: torch.device
) -> TrainResult:
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    split = _load_data(cfg, device, log)
    batch = local_batch(cfg.batch_size, ranks)
    if ranks.world > 1 and len(split.train) < cfg.batch_size:
        raise ConfigError(
            f"{len(split.train)} training samples: fewer than one global batch of "
            f"{cfg.batch_size} to split over {ranks.world} processes",
            "--batch-size",
        )
    torch.manual_seed(cfg.seed)
    model = build(cfg).to(device)
    if ranks.world > 1:
        model = cast(FWIModel, sync_batchnorm(model, device))
    if cfg.augment and cfg.mirror and augment.mirror_offset(model.geometry) > 1:
        log("not mirroring: this geometry's sources are not symmetric within one cell")
    drop_last = len(split.train) > cfg.batch_size  # no tiny last batch for BatchNorm
    steps = len(split.train) // cfg.batch_size if drop_last else 1
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    clock = _Clock(cfg.max_minutes)

    def budget_spent() -> float:  # the slowest process's, so that all take the same rate
        return ranks.all_max(clock.spent())

    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        _lr_factor(
            cfg.epochs * steps, min(steps, 200), budget_spent if cfg.schedule == "time" else None
        ),
    )
    last = last_path(cfg.out)
    epoch, seconds, best, history = 0, 0.0, {}, []
    init: dict[str, Any] | None = None
    if cfg.init is not None and not cfg.resume:
        init = warm_start(model, cfg.init, cfg.as_dict(), log)
    if cfg.resume:
        state = load_state(last)
        check_resumable(state, model, cfg)
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        epoch, seconds = state["epoch"], state["seconds"]
        clock.before = seconds
        best, history = state["best"], state["history"]
        init = state.get("init")
        log(f"resuming {last} after epoch {epoch} ({seconds:.0f} s so far)")
        if epoch >= cfg.epochs:
            log(f"already trained {epoch} epoch(s); raise --epochs to go on")
    net: torch.nn.Module = model
    if ranks.world > 1:
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    log(
        f"{cfg.model} ({cfg.preset}, {model.n_devices} devices, "
        f"{sum(p.numel() for p in model.parameters()):,} parameters) on {device}"
        f"{' with bfloat16 autocast' if train_autocast(cfg, device) else ''}: "
        f"{len(split.train)} training / {len(split.val)} validation samples"
        + (f"; {ranks.world} processes, {batch} samples each a step" if ranks.world > 1 else "")
    )
    clock.started = time.perf_counter()
    stopped_early = False
    while epoch < cfg.epochs:
        if cfg.max_minutes and seconds >= cfg.max_minutes * 60:
            log(
                f"stopping after epoch {epoch}: {seconds / 60:.1f} min spent of the "
                f"{cfg.max_minutes:g} min budget"
            )
            stopped_early = True
            break
        started = time.perf_counter()
        order_gen, aug_gen = _generators(cfg.seed, epoch, device)
        order = torch.randperm(len(split.train), generator=order_gen).tolist()
        mine = shard_order(order, cfg.batch_size, steps, ranks)
        loader = _batches(split.train, cfg, device, mine, drop_last, batch)
        desc = f"epoch {epoch + 1}/{cfg.epochs}"
        train_loss = _train_epoch(
            model, net, loader, opt, sched, cfg, aug_gen, device, desc, steps, ranks
        )
        trained = time.perf_counter() - started
        val_part = (
            None if ranks.world == 1 else list(range(ranks.rank, len(split.val), ranks.world))
        )
        val_batches = _batches(split.val, cfg, device, val_part, False, cfg.batch_size)
        val = _validate(model, val_batches, cfg, device, ranks)
        epoch += 1
        spent = ranks.all_max(time.perf_counter() - started)
        seconds += spent
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "epoch_seconds": spent,
            "seconds": seconds,
            "lr": opt.param_groups[0]["lr"],
            "samples_per_second": steps * cfg.batch_size / max(trained, 1e-9),
            **{f"val_{k}": v for k, v in val.items()},
        }
        history.append(record)
        improved = not best or val["ssim"] > best["ssim"]
        if improved:
            best = {**val, "epoch": epoch}
        if improved and ranks.main:
            save_checkpoint(
                cfg.out,
                model,
                dtype=getattr(torch, cfg.weights_dtype),
                **checkpoint_meta(cfg, split, best, epoch, seconds, history),
                **({"init": init} if init else {}),
            )
        if ranks.main:
            save_state(
                last,
                {
                    "config": model.config(),
                    "state_dict": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": rng_state(),
                    "epoch": epoch,
                    "seconds": seconds,
                    "best": best,
                    "history": history,
                    "train": cfg.as_dict(),
                    "init": init,
                },
            )
        log(epoch_line(record, cfg.epochs, improved))
    return TrainResult(cfg.out, last, epoch, best, seconds, stopped_early, history, ranks.rank)
