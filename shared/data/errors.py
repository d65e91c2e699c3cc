"""The one error type for bad data on disk."""

from __future__ import annotations

from pathlib import Path

from shared.errors import UserError

__all__ = ["DataError"]


class DataError(UserError, ValueError):
    """A file or folder on disk is unusable; ``str()`` is one line naming it and why.

    Only for what is on disk: a bad option value is ``shared.errors.OptionError``.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
