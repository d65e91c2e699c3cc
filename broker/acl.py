"""Topic access lists in Mosquitto's ``acl_file`` format: EPIC's rules, rendered and read back.

EPIC's field rules (docs/architecture.md, "The topic tree"): a device may only write its own
topics and read nothing; the centre reads the whole deployment and writes only maps.
:func:`render_acl` writes them for Mosquitto; :func:`parse_acl` reads such a file for the
embedded broker, which applies it with Mosquitto's meaning
(``epic.broker._plugins.AclFilePlugin``).

Supported lines: comments, ``user NAME``, and ``topic [read|write|readwrite|deny] TOPIC``;
``topic`` lines before any ``user`` line apply to clients without a username. ``pattern`` lines
(``%u``/``%c`` substitution) are refused with the line number: the embedded broker has no
per-user patterns, and EPIC writes one explicit block per user instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from epic.broker.ids import check_id
from epic.shared.errors import BrokerFileError
from epic.shared.wire import TopicError, Wildcard, centre_access, device_access

__all__ = ["Acl", "AclEntry", "parse_acl", "render_acl", "topic_covered"]

CENTRAL_USER = "central"


def render_acl(deployment: str, device_ids: Sequence[str], *, central: str = CENTRAL_USER) -> str:
    """Mosquitto ACL text for one deployment: per-device write-only topics, the centre's reads."""
    deployment = check_id(deployment, "deployment")
    lines = [
        f"# EPIC deployment {deployment}: written by `epic broker credentials`.",
        "# Anything not granted here is denied (Mosquitto's acl_file semantics).",
        "",
        f"user {check_id(central, 'central user')}",
        *centre_access(deployment).acl_lines(),
    ]
    for device in device_ids:
        device = check_id(device, "device id")
        lines += ["", f"user {device}", *device_access(deployment, device).acl_lines()]
    return "\n".join(lines) + "\n"


@dataclass
class AclEntry:
    """What one user (``None``: clients without a username) may do."""

    read: list[str] = field(default_factory=list)
    write: list[str] = field(default_factory=list)
    deny: list[str] = field(default_factory=list)


@dataclass
class Acl:
    """A parsed ACL file: entries by username, ``None`` for clients without one."""

    entries: dict[str | None, AclEntry] = field(default_factory=dict)

    def allows(self, username: str | None, topic: str, *, write: bool) -> bool:
        """Mosquitto's rule: deny wins, then a matching grant; no grant means no access.

        ``topic`` is a topic name (publish, deliver) or a subscription filter (subscribe),
        which is allowed only where the grant covers every topic the filter can match.
        """
        entry = self.entries.get(username)
        if entry is None:
            return False
        if any(topic_covered(topic, rule) for rule in entry.deny):
            return False
        grants = entry.write if write else entry.read
        return any(topic_covered(topic, rule) for rule in grants)


def topic_covered(topic: str, rule: str) -> bool:
    """True when every topic that ``topic`` (a name or a filter) matches also matches ``rule``.

    A malformed topic or rule (``a/#/b``, ``a/b+``) covers and is covered by nothing."""
    try:
        return Wildcard(topic).matches(rule)
    except TopicError:
        return False


def parse_acl(path: Path | str) -> Acl:
    """Read a Mosquitto ACL file; refuse what the embedded broker cannot apply, naming the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerFileError(path, f"cannot read the ACL file ({exc})") from exc
    acl = Acl()
    current: AclEntry = acl.entries.setdefault(None, AclEntry())
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user" and rest:
            current = acl.entries.setdefault(rest, AclEntry())
        elif keyword == "topic" and rest:
            access, _, topic = rest.partition(" ")
            if access not in ("read", "write", "readwrite", "deny") or not topic.strip():
                access, topic = "readwrite", rest  # Mosquitto: the access word is optional
            topic = topic.strip()
            if access in ("read", "readwrite"):
                current.read.append(topic)
            if access in ("write", "readwrite"):
                current.write.append(topic)
            if access == "deny":
                current.deny.append(topic)
        elif keyword == "pattern":
            raise BrokerFileError(
                path,
                f"line {number}: 'pattern' lines are not supported by the embedded broker "
                "(no per-user patterns); write a 'user' block per user",
            )
        else:
            raise BrokerFileError(path, f"line {number}: cannot read {line!r}")
    return acl
