"""``epic compress``: fit the wire code that shrinks a trained EPIC-Net's latents."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import BatchSize, Threads, set_threads
from epic.commands.train import DataDirs, MoreDirs, folders


def compress(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", dir_okay=False, help="A trained EPIC-Net.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", dir_okay=False, help="The checkpoint to write.")
    ],
    data: DataDirs = None,
    more: MoreDirs = None,
    dims: Annotated[
        int, typer.Option(min=1, help="Numbers each device sends (lite's tokens hold 512).")
    ] = 48,
    limit: Annotated[
        int | None, typer.Option(min=2, help="Fit on the first K samples of the folders.")
    ] = None,
    batch_size: BatchSize = 32,
    threads: Threads = 0,
) -> None:
    """Fit, on training data, the few numbers each device sends in place of its tokens.

    Each device's latent is projected onto the directions that hold most of its variance
    on the folders given (principal components); the centre maps them back. Nothing is
    retrained. Deploy the new checkpoint as usual.
    """
    from epic.lab.train.compress import compress as fit

    set_threads(threads)
    fitted = fit(
        checkpoint,
        folders(data, more),
        dims,
        out,
        limit=limit,
        batch_size=batch_size,
        command=shlex.join(["epic", *sys.argv[1:]]),
    )
    kept = ", ".join(f"{v:.4f}" for v in fitted["variance_kept"])
    typer.echo(
        f"wrote {out}: {dims} numbers a device, fitted on {fitted['samples']} samples; "
        f"variance kept per device: {kept}"
    )
