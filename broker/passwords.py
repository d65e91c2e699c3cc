"""Mosquitto 2's password hashes (``$7$``), made and checked with :mod:`hashlib`.

A line of a Mosquitto 2 password file is ``user:$7$<iterations>$<salt>$<hash>``: PBKDF2 with
HMAC-SHA512, a 12-byte random salt and a 64-byte digest, both base64 (standard alphabet, with
padding). That is what ``mosquitto_passwd`` writes (see mosquitto's ``apps/mosquitto_passwd`` and
``src/password_mosq.c``); the tests prove that the real broker accepts ours.

EPIC's embedded broker reads the same hashes (``epic.broker._plugins``), so one password file serves
both brokers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["DEFAULT_ITERATIONS", "hash_password", "is_mosquitto_hash", "verify_password"]

# mosquitto_passwd's own default is 101. EPIC's passwords are 192-bit random strings, so
# stretching adds little against guessing; 10,000 rounds (about 10 ms a connect) is a
# margin for passwords a person chose, cheap enough for a broker that many devices reconnect to.
DEFAULT_ITERATIONS = 10_000
_SALT_BYTES = 12  # as mosquitto_passwd
_PREFIX = "$7$"


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """Return ``$7$<iterations>$<salt>$<hash>`` for ``password``, as Mosquitto 2 stores it."""
    if not password:
        raise ValueError("the password is empty")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"{_PREFIX}{iterations}${_b64(salt)}${_b64(digest)}"


def is_mosquitto_hash(encoded: str) -> bool:
    """True when ``encoded`` is a well-formed ``$7$`` hash."""
    return _parse(encoded) is not None


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches the ``$7$`` hash ``encoded`` (constant-time compare)."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    iterations, salt, digest = parsed
    candidate = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(candidate, digest)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _parse(encoded: str) -> tuple[int, bytes, bytes] | None:
    if not encoded.startswith(_PREFIX):
        return None
    parts = encoded[len(_PREFIX) :].split("$")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    try:
        salt = base64.b64decode(parts[1], validate=True)
        digest = base64.b64decode(parts[2], validate=True)
    except (binascii.Error, ValueError):
        return None
    iterations = int(parts[0])
    if iterations < 1 or not salt or len(digest) != hashlib.sha512().digest_size:
        return None
    return iterations, salt, digest
