"""The embedded broker's persistent sessions, kept in a small JSON file across restarts.

amqtt keeps sessions in memory only, so a restarted embedded broker had forgotten that the
centre holds a persistent session (``clean_session=False``): latents that edges published
after the restart and before the centre came back went to nobody and were lost
(``tests/faults/test_broker_outage.py``). With a state file the broker starts with each
such session restored, offline, with its subscriptions, and queues QoS 1 messages for it
exactly as it would have before the restart.

What is kept: client id, user name (the ACL checks it) and subscriptions, rewritten on
each SUBSCRIBE, UNSUBSCRIBE and clean-session takeover. Not kept: messages queued at the
moment of a crash (Mosquitto with ``persistence true`` keeps those too).

File format (version 1)::

    {"version": 1, "sessions": [{"client_id": "epic-central-demo", "username": null,
                                 "subscriptions": [["epic/demo/latent/+/+", 1], ...]}]}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from epic.shared.errors import BrokerFileError

__all__ = ["SavedSession", "read_sessions", "write_sessions"]

VERSION = 1


@dataclass(frozen=True)
class SavedSession:
    client_id: str
    username: str | None
    subscriptions: tuple[tuple[str, int], ...]


def read_sessions(path: Path | str) -> list[SavedSession]:
    """The saved sessions; none when the file does not exist yet."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BrokerFileError(path, f"cannot read the broker state ({exc})") from exc
    try:
        if raw["version"] != VERSION:
            raise ValueError(f"version {raw['version']}, this broker reads {VERSION}")
        return [
            SavedSession(
                client_id=str(s["client_id"]),
                username=None if s["username"] is None else str(s["username"]),
                subscriptions=tuple((str(f), int(q)) for f, q in s["subscriptions"]),
            )
            for s in raw["sessions"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BrokerFileError(path, f"not a broker state file ({exc})") from exc


def write_sessions(path: Path | str, sessions: list[SavedSession]) -> None:
    """Replace the file atomically (a crash leaves the old one or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "version": VERSION,
        "sessions": [
            {
                "client_id": s.client_id,
                "username": s.username,
                "subscriptions": [list(sub) for sub in s.subscriptions],
            }
            for s in sessions
        ],
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
