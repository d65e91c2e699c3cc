"""The "last" training state: everything ``--resume`` needs to go on exactly where it stopped.

Written after every epoch next to the best checkpoint (``runs/epic.pt`` ->
``runs/epic.last.pt``), atomically, with plain ``torch.save``: model config and weights,
optimizer and LR-schedule state, the epoch count, the seconds spent, the best validation
figures so far, the per-epoch history and torch's global RNG states. Everything in it is a
tensor or a plain type, so it loads with ``weights_only=True`` too. Per-epoch randomness
(shuffling, augmentation, dropout masks) comes from generators seeded by (seed, epoch), so
only the epoch count is needed to replay it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from epic.shared.errors import DataError

__all__ = ["FORMAT", "last_path", "load_state", "rng_state", "save_state", "set_rng_state"]

FORMAT = "epic-train-state"


def last_path(out: Path | str) -> Path:
    """Where the training state of best checkpoint ``out`` lives."""
    out = Path(out)
    return out.with_name(f"{out.stem}.last{out.suffix or '.pt'}")


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomic: a crash mid-write leaves the previous epoch's state in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, "no training state to resume from (run without --resume first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise DataError(path, f"not a readable training state ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(path, "not an EPIC training state")
    return state
