"""The root of every error a user can cause.

A ``UserError`` ends ``epic`` with one line on stderr and exit code 2 (caught in one place,
``epic.cli.main``); anything else is a bug and keeps its traceback. Each room derives its own
kinds from it (bad data on disk, a bad setting, an untrustworthy envelope, a bad broker file)
so that a caller can still catch just the kind it handles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["OptionError", "UserError"]


class UserError(Exception):
    """Something the user can fix; ``str()`` is one line saying what and how."""


class OptionError(UserError, ValueError):
    """A value given on the command line or in settings is unusable (an unknown name, a
    number out of range, a malformed spec); ``str()`` is ``WHAT: PROBLEM``.

    ``what`` names the option or the value given; unlike ``DataError``'s path it is kept as
    written (a URL's ``//`` stays). A ``ValueError`` too, as the ``DataError`` it replaces.
    """

    def __init__(self, what: str | Path, problem: str) -> None:
        self.what = str(what)
        self.problem = problem
        super().__init__(f"{self.what}: {problem}")
