"""The root of every error a user can cause, and its kinds.

A ``UserError`` ends ``epic`` with one line on stderr and exit code 2 (caught in one place,
``epic.cli.main``); anything else is a bug and keeps its traceback. Each room derives its own
kinds from it so that a caller can still catch just the kind it handles. The kinds that carry
no room's logic live here, so one module lists them: a bad option value, bad data on disk, a
bad training or evaluation setting, a bad broker file. ``EnvelopeError`` (``epic.shared.wire``),
``BrokerAddressError`` (``epic.edge.connection``), ``ListenError`` (``epic.central.listener``) and
``LaunchError`` (``epic.shared.launcher``) sit beside the code that raises them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BrokerFileError", "ConfigError", "DataError", "OptionError", "UserError"]


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


class DataError(UserError, ValueError):
    """A file or folder on disk is unusable; ``str()`` is one line naming it and why.

    Only for what is on disk: a bad option value is ``OptionError``.
    """

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(UserError, ValueError):
    """A training or evaluation setting is unusable (unknown preset or option, K >= N
    devices, a resumed run that is not the saved one); ``str()`` is one line saying which
    and why, ``option`` names the command-line option to blame where there is one."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class BrokerFileError(DataError):
    """A users, ACL or credentials file is unusable; ``str()`` is one line naming it and why."""
