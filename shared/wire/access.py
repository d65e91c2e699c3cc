"""Who may read and write which topics: EPIC's field rules, as the broker's ACL grants them.

A device may only write its own topics (any sample) and read nothing; the centre reads the
whole deployment and writes only maps (docs/architecture.md, "The topic tree").
"""

from __future__ import annotations

from dataclasses import dataclass

from epic.shared.wire.topic import (
    HEARTBEAT,
    LATENT,
    MAP,
    RAW,
    STATUS,
    Wildcard,
    subtree,
    topic_filter,
)

__all__ = ["Access", "centre_access", "device_access"]


@dataclass(frozen=True)
class Access:
    """The filters one party may read and write."""

    read: tuple[Wildcard, ...] = ()
    write: tuple[Wildcard, ...] = ()

    def acl_lines(self) -> list[str]:
        """Its grants as Mosquitto ``acl_file`` lines (the ``user`` line is the caller's)."""
        return [f"topic read {w}" for w in self.read] + [f"topic write {w}" for w in self.write]


def centre_access(deployment: str) -> Access:
    return Access(read=(subtree(deployment),), write=(subtree(deployment, MAP),))


def device_access(deployment: str, device: str) -> Access:
    return Access(
        write=(
            topic_filter(deployment, LATENT, device=device),
            topic_filter(deployment, RAW, device=device),
            topic_filter(deployment, STATUS, device=device),
            topic_filter(deployment, HEARTBEAT, device=device),
        )
    )
