"""Option types shared by several sub-commands."""

from __future__ import annotations

import os

import enum

import torch
import typer

from shared.physics.families import FAMILIES

# Built from the registry so a new family shows up in every command's choices.
Family = enum.Enum("Family", {name: name for name in FAMILIES}, type=str)


def set_threads(threads: int | None) -> int:
    """Pin torch's CPU threads on purpose: two CPU-heavy jobs fighting over cores run each
    10-20x slower, so a job takes what it is given, all cores by default."""
    n = threads or os.cpu_count() or 1
    if n < 1:
        raise typer.BadParameter(f"{n}: must be >= 1", param_hint="--threads")
    torch.set_num_threads(n)
    return n
