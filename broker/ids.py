"""Ids that go into topics and user names: ``[A-Za-z0-9_.-]{1,64}`` (DESIGN.md, "Topics")."""

from __future__ import annotations

import re

__all__ = ["ID_PATTERN", "check_id", "default_device_ids"]

ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid id, else raise ``ValueError`` naming ``what``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not [A-Za-z0-9_.-]{{1,64}}")
    return value


def default_device_ids(n: int) -> list[str]:
    """``dev-0`` ... ``dev-<n-1>``, in receiver order."""
    if n < 1:
        raise ValueError(f"the number of devices must be at least 1, got {n}")
    return [f"dev-{i}" for i in range(n)]
