"""What one training step costs, model against model, measured side by side in one run.

    python -m epic.lab.bench.train_step --threads 2 \\
        --variant epic --variant 'epic:decimate=1,time_stride=4' --variant inversionnet

Each variant is ``MODEL`` or ``MODEL:KEY=VALUE,...`` (preset overrides, VALUE as JSON);
``KEY`` ``amp=false`` runs that variant's steps in float32 instead of under bfloat16 autocast,
``math_attention=false`` with torch's default attention kernels instead of ``epic train``'s,
``ssim_weight=W`` with the loss's SSIM term.
A step is what ``epic train`` does per batch (normalization, forward and backward under the
same autocast, AdamW); the variants take turns round by round, so a machine that slows
down mid-run slows them all alike. Prints the median step time and samples per second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import time
from pathlib import Path

import torch
from tqdm import tqdm

from epic.lab.inference import normalize
from epic.lab.train.config import TrainConfig, attention_kernels, build, train_autocast
from epic.lab.train.loss import map_loss
from epic.shared.models.base import FWIModel

__all__ = ["main", "parse_variant"]


def parse_variant(text: str) -> tuple[str, dict]:
    """``epic:decimate=8,attn_levels=3`` -> ``("epic", {"decimate": 8, "attn_levels": 3})``."""
    name, _, rest = text.partition(":")
    options = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", rest)):  # not inside [...]
        key, _, value = item.partition("=")
        options[key] = json.loads(value)
    return name, options


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--devices", type=int, default=5)
    p.add_argument("--steps", type=int, default=8, help="timed steps per variant")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = torch.randn(args.batch_size, 5, 1000, 70) * 10
    velocity = torch.rand(args.batch_size, 1, 70, 70) * 3000 + 1500
    # (variant, config, model, optimizer, parameters, step times)
    cpu = torch.device("cpu")
    math_attention: dict[str, bool] = {}
    runs: list[tuple[str, TrainConfig, FWIModel, torch.optim.Optimizer, int, list[float]]] = []
    for text in args.variant:
        name, hparams = parse_variant(text)
        amp = hparams.pop("amp", True)
        ssim_weight = hparams.pop("ssim_weight", 0.0)
        math_attention[text] = hparams.pop("math_attention", True)
        # The batches are random tensors: the folder is a name that nothing reads.
        cfg = TrainConfig(
            name,
            [Path("random-batches")],
            Path("unused.pt"),
            devices=args.devices,
            amp=amp,
            ssim_weight=ssim_weight,
            hparams=hparams,
        )
        model = build(cfg).train()
        opt: torch.optim.Optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        params = sum(q.numel() for q in model.parameters())
        runs.append((text, cfg, model, opt, params, []))

    def step(text: str, cfg: TrainConfig, model: FWIModel, opt: torch.optim.Optimizer) -> float:
        def kernels() -> contextlib.AbstractContextManager[None]:
            return attention_kernels(cpu) if math_attention[text] else contextlib.nullcontext()

        started = time.perf_counter()
        x, y = normalize(model, data, velocity)
        with (
            kernels(),
            torch.autocast("cpu", torch.bfloat16, enabled=train_autocast(cfg, cpu)),
        ):
            pred = model(x).float()
        loss = map_loss(pred, y, model.normalization, cfg.ssim_weight)
        opt.zero_grad()
        with kernels():
            loss.backward()
        opt.step()
        return time.perf_counter() - started

    for text, cfg, model, opt, _, _ in runs:
        step(text, cfg, model, opt)  # warm-up: allocator, oneDNN kernels
    for _ in tqdm(range(args.steps), desc="rounds", unit="round"):
        for text, cfg, model, opt, _, times in runs:
            times.append(step(text, cfg, model, opt))
    base = statistics.median(runs[0][5])
    print(f"batch {args.batch_size}, {args.threads} thread(s), median of {args.steps} steps")
    for text, _, _, _, params, times in runs:
        t = statistics.median(times)
        print(
            f"{text:55s} {params:>10,} params  {t:6.3f} s/step  "
            f"{args.batch_size / t:6.1f} samples/s  x{base / t:.2f}"
        )


if __name__ == "__main__":
    main()
