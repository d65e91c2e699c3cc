"""Option types shared by several sub-commands."""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from shared.physics.families import FAMILIES

# Built from the registry so a new family shows up in every command's choices.
Family = enum.Enum("Family", {name: name for name in FAMILIES}, type=str)

Threads = Annotated[int, typer.Option(min=0, help="CPU threads for torch (0: all cores).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Samples per forward pass.")]
ComputeDevice = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
JsonOut = Annotated[
    Path | None, typer.Option("--json", dir_okay=False, help="Write the figures as JSON.")
]


def write_json(path: Path, value: object) -> None:
    """Write ``value`` as indented JSON, making the folder, and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")
    typer.echo(f"wrote {path}")


def set_threads(threads: int) -> int:
    """Pin torch's CPU threads on purpose: two CPU-heavy jobs fighting over cores run each
    10-20x slower, so a job takes what it is given, all cores by default (``0``)."""
    import torch  # heavy: imported when a command needs it, so `epic --help` stays quick

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n
