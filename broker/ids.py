"""Ids that go into topics and user names (docs/architecture.md, "The topic tree"): the
one pattern and check are ``epic.shared.wire.ids``'s, re-exported here for the broker's
callers (a bad id is a ``ValueError``)."""

from __future__ import annotations

from epic.shared.wire.ids import ID_PATTERN, check_id

__all__ = ["ID_PATTERN", "check_id", "default_device_ids"]


def default_device_ids(n: int) -> list[str]:
    """``dev-0`` ... ``dev-<n-1>``, in receiver order."""
    if n < 1:
        raise ValueError(f"the number of devices must be at least 1, got {n}")
    return [f"dev-{i}" for i in range(n)]
