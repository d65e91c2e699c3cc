"""The root of every error a user can cause.

A ``UserError`` ends ``epic`` with one line on stderr and exit code 2 (caught in one place,
``epic.cli.main``); anything else is a bug and keeps its traceback. Each room derives its own
kinds from it (bad data on disk, a bad setting, an untrustworthy envelope, a bad broker file)
so that a caller can still catch just the kind it handles.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix; ``str()`` is one line saying what and how."""
