"""The errors a user of ``lab`` can cause, apart from bad data (``DataError``)."""

from __future__ import annotations

from shared.errors import UserError

__all__ = ["ConfigError", "TrainingDiverged"]


class ConfigError(UserError, ValueError):
    """A setting is unusable (unknown preset or option, K >= N devices, a resumed run that
    is not the saved one); ``str()`` is one line saying which and why, ``option`` names the
    command-line option to blame where there is one."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says when and what to try."""
