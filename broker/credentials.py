"""Field credentials for one deployment: a user per device and one for the centre.

``write_credentials(out, deployment, device_ids)`` writes, each readable by its owner only
(mode 0600, in a 0700 folder):

- ``passwd``: Mosquitto 2's password file (``$7$`` hashes, ``epic.broker.passwords``);
- ``acl``: the topic rules (``epic.broker.acl.render_acl``);
- ``nats-auth.conf``: the same users and rules for a NATS cluster (MQTT with JetStream),
  bcrypt-hashed (``epic.broker.nats_auth``);
- ``credentials.json``: ``{"<user>": "<password>"}``, the clear passwords to hand to each
  device and to the centre. Keep it off the broker host once they are handed out.

Passwords are 32 characters from :func:`secrets.token_urlsafe` (192 random bits).

Mosquitto started as root drops to the ``mosquitto`` user before it reads ``passwd`` and
``acl`` (man mosquitto.conf, ``user``), so a 0600 file owned by root is unreadable to it:
``chown mosquitto:mosquitto passwd acl`` on the broker host (broker/mosquitto/README.md), or
run it as the files' owner (the tests set ``user`` to the current user).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from epic.broker.acl import CENTRAL_USER, render_acl
from epic.broker.ids import check_id
from epic.broker.nats_auth import DEFAULT_BCRYPT_ROUNDS, render_nats_auth
from epic.broker.passwords import DEFAULT_ITERATIONS, hash_password
from epic.shared.errors import BrokerFileError

__all__ = [
    "CredentialFiles",
    "generate_passwords",
    "render_passwd",
    "write_credentials",
]

FILES = ("passwd", "acl", "nats-auth.conf", "credentials.json")
_PASSWORD_BYTES = 24  # 192 bits, 32 URL-safe characters


@dataclass(frozen=True)
class CredentialFiles:
    """What :func:`write_credentials` wrote, and the clear passwords (user to password)."""

    passwd: Path
    acl: Path
    nats_auth: Path
    credentials: Path
    passwords: dict[str, str]


def generate_passwords(users: Sequence[str]) -> dict[str, str]:
    """A fresh random password for each user (names checked as ids, no repeats)."""
    seen: set[str] = set()
    for user in users:
        check_id(user, "user")
        if user in seen:
            raise ValueError(f"user {user!r} is listed twice")
        seen.add(user)
    return {user: secrets.token_urlsafe(_PASSWORD_BYTES) for user in users}


def render_passwd(passwords: Mapping[str, str], *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """Mosquitto password-file text: ``user:$7$...`` lines."""
    return "".join(
        f"{user}:{hash_password(password, iterations=iterations)}\n"
        for user, password in passwords.items()
    )


def write_credentials(
    out: Path | str,
    deployment: str,
    device_ids: Sequence[str],
    *,
    central: str = CENTRAL_USER,
    overwrite: bool = False,
    iterations: int = DEFAULT_ITERATIONS,
    bcrypt_rounds: int = DEFAULT_BCRYPT_ROUNDS,
) -> CredentialFiles:
    """Write ``passwd``, ``acl``, ``nats-auth.conf`` and ``credentials.json`` for a
    deployment into ``out``.

    Refuses (``ValueError``) bad ids, a device named like the centre, and no devices;
    refuses (:class:`BrokerFileError`) to replace existing files unless ``overwrite``: new
    passwords would lock out every device already given the old ones.
    """
    check_id(deployment, "deployment")
    if not device_ids:
        raise ValueError("at least one device is needed")
    for device in device_ids:
        check_id(device, "device id")
        if device == central:
            raise ValueError(f"device id {device!r} is the centre's user name")
    passwords = generate_passwords([central, *device_ids])
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BrokerFileError(out, "exists and is not a folder")
    existing = [name for name in FILES if (out / name).exists()]
    if existing and not overwrite:
        raise BrokerFileError(
            out / existing[0],
            "exists; pass --overwrite to replace (devices holding the old "
            "passwords will be refused)",
        )
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    contents = {
        "passwd": render_passwd(passwords, iterations=iterations),
        "acl": render_acl(deployment, device_ids, central=central),
        "nats-auth.conf": render_nats_auth(deployment, passwords, central, rounds=bcrypt_rounds),
        "credentials.json": json.dumps(passwords, indent=2) + "\n",
    }
    for name, text in contents.items():
        _write_private(out / name, text)
    return CredentialFiles(
        passwd=out / "passwd",
        acl=out / "acl",
        nats_auth=out / "nats-auth.conf",
        credentials=out / "credentials.json",
        passwords=passwords,
    )


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the first byte (no umask window)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by umask, and ignored for an old file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(text)
    finally:
        if fd != -1:
            os.close(fd)
    os.replace(tmp, path)
