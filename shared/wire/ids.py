"""Ids that go into topics, envelopes and user names: deployment, sample and device ids.

One pattern, ``[A-Za-z0-9_.-]{1,64}``: safe in an MQTT topic level (no ``/``, ``+``, ``#``),
in a file name and in a URL path, and short enough for the envelope's one-byte length.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["ID_CHARS", "ID_PATTERN", "ID_REGEX", "ID_SPEC", "check_id"]

ID_CHARS = "A-Za-z0-9_.-"  # the inside of a character class: what an id may hold
ID_MAX = 64
ID_SPEC = f"[{ID_CHARS}]{{1,{ID_MAX}}}"  # as messages and help texts show it
ID_PATTERN = re.compile(ID_SPEC)  # use with fullmatch
# Anchored, for FastAPI's Path(pattern=...)/Query(pattern=...), which search rather than match.
ID_REGEX = f"^{ID_SPEC}$"


def check_id(value: str, what: str, error: Callable[[str], Exception] = ValueError) -> str:
    """Return ``value`` if it is an id, else raise ``error(message)`` naming ``what``.

    ``error`` lets each caller keep its own error type (the envelope's ``bad-id``
    ``EnvelopeError``, a plain ``ValueError`` elsewhere) with one check and one message.
    """
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise error(f"{what} {value!r} is not {ID_SPEC}")
    return value
