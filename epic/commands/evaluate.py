"""``epic eval``: SSIM, MAE and RMSE of a checkpoint on OpenFWI-layout folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import (
    BatchSize,
    ComputeDevice,
    JsonOut,
    Threads,
    set_threads,
    write_json,
)
from epic.commands.train import DataDirs, MoreDirs, folders


def evaluate(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", dir_okay=False, help="A checkpoint file.")
    ],
    data: DataDirs = None,
    more: MoreDirs = None,
    drop_devices: Annotated[
        int, typer.Option(min=0, help="Devices K dropped at random per sample (K < N).")
    ] = 0,
    seed: Annotated[int, typer.Option(min=0, help="Which devices drop.")] = 0,
    batch_size: BatchSize = 32,
    json_out: JsonOut = None,
    plot: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="PNG of truth, prediction and error for a few samples."),
    ] = None,
    plot_count: Annotated[int, typer.Option(min=1, max=12, help="Samples in --plot.")] = 4,
    device: ComputeDevice = "auto",
    threads: Threads = 0,
) -> None:
    """Score a checkpoint on every sample of the folders (optionally with K devices gone)."""
    from epic.lab.eval.evaluate import evaluate as run_evaluation
    from epic.lab.eval.evaluate import format_table

    dirs = folders(data, more)
    set_threads(threads)
    result = run_evaluation(
        checkpoint,
        dirs,
        drop_devices=drop_devices,
        seed=seed,
        batch_size=batch_size,
        device=device,
        plot=plot,
        plot_count=plot_count,
        progress=True,
    )
    dropped = f", {drop_devices} device(s) dropped per sample (seed {seed})" if drop_devices else ""
    typer.echo(
        f"{checkpoint}: {result['model']} ({result['preset']}, "
        f"{result['n_devices']} devices){dropped}"
    )
    typer.echo(format_table(result))
    if json_out is not None:
        write_json(json_out, result)
    if plot is not None:
        typer.echo(f"wrote {plot}")
