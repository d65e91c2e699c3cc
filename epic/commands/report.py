"""``epic report``: the results table, every checkpoint on every test folder
(``epic.lab.eval.results_table``)."""

from __future__ import annotations

import shlex
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


def _command(
    checkpoints: list[Path],
    dirs: list[Path],
    out: Path,
    drop_seed: int,
    max_drop: int,
    batch_size: int,
    device: str,
    json_out: Path | None,
    threads: int,
) -> str:
    """The command line with every option spelled out: running it re-creates the report."""
    args = ["epic", "report"]
    for checkpoint in checkpoints:
        args += ["--checkpoint", str(checkpoint)]
    args += ["--data", *map(str, dirs), "--out", str(out), "--drop-seed", str(drop_seed)]
    args += ["--max-drop", str(max_drop)]
    args += ["--batch-size", str(batch_size), "--device", device]
    if json_out is not None:
        args += ["--json", str(json_out)]
    if threads:
        args += ["--threads", str(threads)]
    return shlex.join(args)


def report(
    checkpoint: Annotated[
        list[Path],
        typer.Option(
            "--checkpoint", "-c", dir_okay=False, help="A checkpoint file; repeat for more."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", dir_okay=False, help="The Markdown file to write.")
    ],
    data: DataDirs = None,
    more: MoreDirs = None,
    drop_seed: Annotated[
        int, typer.Option(min=0, help="Which devices drop in the robustness table.")
    ] = 0,
    max_drop: Annotated[
        int,
        typer.Option(min=0, help="Robustness: drop k = 1 .. this many devices (at most N - 1)."),
    ] = 4,
    batch_size: BatchSize = 32,
    json_out: JsonOut = None,
    device: ComputeDevice = "auto",
    threads: Threads = 0,
) -> None:
    """Score checkpoints on test folders (one per family) and write the results as Markdown:
    a side-by-side table and a robustness table (k of N devices dropped)."""
    from epic.lab.eval.results_table import build_report, format_markdown

    dirs = folders(data, more)
    set_threads(threads)
    command = _command(
        checkpoint, dirs, out, drop_seed, max_drop, batch_size, device, json_out, threads
    )
    result = build_report(
        checkpoint,
        dirs,
        drop_seed=drop_seed,
        max_drop=max_drop,
        batch_size=batch_size,
        device=device,
        command=command,
        progress=True,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(format_markdown(result))
    typer.echo(f"wrote {out}")
    if json_out is not None:
        write_json(json_out, result)
