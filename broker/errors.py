"""The broker room's one error type."""

from __future__ import annotations

from shared.data.errors import DataError

__all__ = ["BrokerFileError"]


class BrokerFileError(DataError):
    """A users, ACL or credentials file is unusable; ``str()`` is one line naming it and why.

    A :class:`~shared.data.errors.DataError`, hence a :class:`~shared.errors.UserError`:
    ``epic`` prints it as one line and exits 2.
    """
