"""Reading PyTorch files safely, and saying in a few words why one could not be read.

EPIC only ever loads with ``weights_only=True``: a checkpoint or bundle file holds tensors
and plain values, and unpickling anything else could run code. When such a load fails,
PyTorch's own message is several hundred characters long and ends by suggesting
``weights_only=False``, which is exactly the unsafe step; a user gets ``reason()`` instead:
what the file is, and what to do about it.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

from epic.shared.errors import DataError, UserError

__all__ = ["UnreadableFile", "from_torch_load", "load", "reason", "reworded"]

# PyTorch names the class a file wanted unpickled as "GLOBAL module.Name".
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_TORCH_LOAD = os.path.join("torch", "serialization.py")
_ZIP_PROBLEMS = ("PytorchStreamReader", "zip archive", "central directory")
_FIX = {
    "checkpoint": "give one written by `epic train`",
    "bundle file": "make the bundle again with `epic deploy`",
}


class UnreadableFile(DataError):
    """A file ``torch.load`` refused, worded by ``reason``."""


def load(path: Path | str, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a failure is one short ``DataError``."""
    import torch  # heavy: only when a file is read

    path = Path(path)
    if path.is_dir():
        raise DataError(path, f"is a folder, not a {what} file")
    if not path.is_file():
        raise DataError(path, f"no such {what} file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a damaged or foreign file
        raise UnreadableFile(path, reason(exc, what)) from exc


def from_torch_load(exc: BaseException | None) -> bool:
    """Whether ``exc`` was raised inside ``torch.load`` (its traceback passes through
    ``torch/serialization.py``), as opposed to any other error chained to a ``DataError``."""
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(_TORCH_LOAD):
            return True
        tb = tb.tb_next
    return False


def reason(exc: BaseException, what: str = "checkpoint") -> str:
    """One short line for a failed ``torch.load``, never advising an unsafe load."""
    fix = _FIX.get(what, f"use a {what} EPIC wrote")
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and (found := _GLOBAL.search(text)):
        return f"holds a Python object ({found[1]}) besides tensors, refused as unsafe; {fix}"
    if isinstance(exc, pickle.UnpicklingError):
        return f"not a PyTorch {what}; {fix}"
    if isinstance(exc, EOFError):
        return f"empty or cut short; copy the {what} again"
    if isinstance(exc, PermissionError):
        return f"not readable by this user ({exc.strerror}); check its permissions"
    # A cut-short zip fails in the reader (RuntimeError) or in a read (OSError).
    if isinstance(exc, OSError) or (
        isinstance(exc, RuntimeError) and any(p in text for p in _ZIP_PROBLEMS)
    ):
        return f"damaged or cut short; copy the {what} again"
    return f"cannot be read as a PyTorch {what} ({type(exc).__name__}); {fix}"


def reworded(error: UserError) -> str:
    """``str(error)``, or, where a failed ``torch.load`` caused a ``DataError``
    (``load_checkpoint`` chains PyTorch's own error), the short ``reason``."""
    cause = error.__cause__
    if (
        not isinstance(error, DataError)
        or isinstance(error, UnreadableFile)
        or cause is None
        or not from_torch_load(cause)
    ):
        return str(error)
    return f"{error.path}: {reason(cause)}"
