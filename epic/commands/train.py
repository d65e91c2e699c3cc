"""``epic train``: train a model on OpenFWI-layout folders (``epic.lab.train.trainer``)."""

from __future__ import annotations

import enum
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import (
    BatchSize,
    ComputeDevice,
    Threads,
    set_threads,
)

# The registry's names, spelled out so that `epic --help` does not import torch (and as
# literals, so that the type checker sees the members).
ModelName = enum.Enum(
    "ModelName",
    {"epic": "epic", "inversionnet": "inversionnet", "fla": "fla", "sla": "sla"},
    type=str,
)
Preset = enum.Enum("Preset", {"lite": "lite", "standard": "standard", "paper": "paper"}, type=str)
Schedule = enum.Enum("Schedule", {"steps": "steps", "time": "time"}, type=str)
WeightsDtype = enum.Enum("WeightsDtype", {"float32": "float32", "bfloat16": "bfloat16"}, type=str)

DataDirs = Annotated[
    list[Path] | None,
    typer.Option("--data", "-d", help="OpenFWI-layout folder(s); more may follow as arguments."),
]
MoreDirs = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="DIR",
        help="More dataset folders: `--data A B C` reads all three.",
        show_default=False,
    ),
]


def folders(data: list[Path] | None, more: list[Path] | None) -> list[Path]:
    """``--data A B`` arrives as ``--data A`` plus an argument ``B``: join them."""
    joined = [*(data or []), *(more or [])]
    if not joined:
        raise typer.BadParameter("give at least one dataset folder", param_hint="--data")
    return joined


def _families(values: list[str] | None) -> dict[str, int]:
    parsed: dict[str, int] = {}
    for item in values or []:
        name, sep, raw = item.partition("=")
        if not sep or not name or not raw.isdigit():
            raise typer.BadParameter(f"{item!r}: expected NAME=COUNT", param_hint="--family")
        parsed[name] = int(raw)
    return parsed


def _hparams(values: list[str] | None) -> dict:
    parsed = {}
    for item in values or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--hparam")
        try:
            parsed[key] = json.loads(raw)
        except json.JSONDecodeError:
            parsed[key] = raw
    return parsed


def train(
    model: Annotated[ModelName, typer.Option("--model", "-m", help="Which network.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", dir_okay=False, help="Best checkpoint (by val SSIM).")
    ],
    epochs: Annotated[int, typer.Option(min=1, help="Epochs in all (a resumed run included).")],
    data: DataDirs = None,
    more: MoreDirs = None,
    preset: Annotated[Preset, typer.Option(help="Model size.")] = Preset["lite"],
    devices: Annotated[int, typer.Option(min=1, max=70, help="Edge devices N.")] = 5,
    batch_size: BatchSize = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(min=0, help="AdamW weight decay.")] = 1e-4,
    val_fraction: Annotated[
        float, typer.Option(help="Share of each folder held out for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(min=0, help="Split, initialization, augmentation.")] = 0,
    device_dropout: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            help="Chance a sample loses devices (default 0.5 for epic, 0 for the others).",
        ),
    ] = None,
    augment: Annotated[bool, typer.Option(help="Noise augmentation (and --mirror).")] = True,
    mirror: Annotated[
        bool, typer.Option(help="Also mirror left-right (the middle shot lands 10 m off).")
    ] = False,
    noise: Annotated[float, typer.Option(min=0, help="Largest noise std (normalized).")] = 0.05,
    resume: Annotated[bool, typer.Option(help="Go on from OUT's .last state.")] = False,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after the epoch that spends this budget.")
    ] = None,
    device: ComputeDevice = "auto",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 0,
    amp: Annotated[
        bool, typer.Option(help="bfloat16 autocast (CUDA, or a CPU with native bfloat16).")
    ] = True,
    hparam: Annotated[
        list[str] | None,
        typer.Option(help="Model option override KEY=VALUE (JSON value); repeatable."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Progress bars.")] = True,
    threads: Threads = 0,
    maps: Annotated[
        list[Path] | None,
        typer.Option(
            help="Velocity maps (zip, folder or .npy) to simulate on --device and train on, "
            "instead of --data; repeatable.",
        ),
    ] = None,
    family: Annotated[
        list[str] | None,
        typer.Option(help="Generated family to simulate and train on, NAME=COUNT; repeatable."),
    ] = None,
    maps_limit: Annotated[
        int | None, typer.Option(min=2, help="Use the first N maps of each --maps source.")
    ] = None,
    simulate_minutes: Annotated[
        float | None,
        typer.Option(help="Simulation budget; generated families are cut to fit it."),
    ] = None,
    weights_dtype: Annotated[
        WeightsDtype, typer.Option(help="Dtype of the saved checkpoint's weights.")
    ] = WeightsDtype["float32"],
    schedule: Annotated[
        Schedule,
        typer.Option(
            help="What the learning rate's cosine spans: the epochs, or --max-minutes (time)."
        ),
    ] = Schedule["steps"],
    ssim_weight: Annotated[
        float, typer.Option(min=0, help="Weight of a (1 - SSIM) term in the loss; 0: none.")
    ] = 0.0,
    init: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Start from this checkpoint's weights (the same model): a fine-tune.",
        ),
    ] = None,
) -> None:
    """Train a model; per epoch one line of figures, the best epoch saved to --out.

    Under torchrun (`torchrun --nproc-per-node N -m epic train ...`), N processes share
    each global --batch-size batch and train what one process would.
    """
    from epic.lab.train.trainer import TrainConfig, TrainingDiverged
    from epic.lab.train.trainer import train as run_training

    dirs = [*(data or []), *(more or [])]
    if not (dirs or maps or family):
        raise typer.BadParameter(
            "give at least one dataset folder (or --maps / --family)", param_hint="--data"
        )
    set_threads(threads)
    try:
        cfg = TrainConfig(
            model=model.value,
            data=dirs,
            out=out,
            preset=preset.value,
            devices=devices,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            val_fraction=val_fraction,
            seed=seed,
            device_dropout=device_dropout,
            augment=augment,
            mirror=mirror,
            noise=noise,
            resume=resume,
            max_minutes=max_minutes,
            device=device,
            workers=workers,
            amp=amp,
            hparams=_hparams(hparam),
            progress=progress,
            command=shlex.join(["epic", *sys.argv[1:]]),
            maps=maps or [],
            families=_families(family),
            maps_limit=maps_limit,
            simulate_minutes=simulate_minutes,
            weights_dtype=weights_dtype.value,
            schedule=schedule.value,
            ssim_weight=ssim_weight,
            init=init,
        )
        result = run_training(cfg)
    except TrainingDiverged as exc:
        typer.echo(f"epic: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if result.rank != 0:  # under torchrun: process 0 speaks for the run
        return
    best = result.best
    typer.echo(
        f"best epoch {best['epoch']} of {result.epochs_done}: SSIM {best['ssim']:.4f}, "
        f"MAE {best['mae']:.1f} m/s, RMSE {best['rmse']:.1f} m/s -> {result.out} "
        f"(training state {result.last}; {result.seconds / 60:.1f} min)"
    )
