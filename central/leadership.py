"""Which of a deployment's centres is active, when they share a PostgreSQL store: the one
that holds the deployment's advisory lock. The others wait (standby) with their model
loaded and profiled, and take over within a poll interval of the lock coming free.

The lock is PostgreSQL's own (``pg_try_advisory_lock``), held by one connection kept for
that alone: it frees the moment that connection ends, be it a clean stop, a SIGKILL of
the centre (the kernel closes its socket) or the loss of its machine (the server's TCP
keepalive). Nothing of our own decides who is active.

What makes a takeover lose nothing is elsewhere: the active centre acknowledges a latent to
the broker only once its row is committed (``epic.central.pending``), its MQTT session is
persistent (a fixed client id, not clean), so the broker queues what comes while neither
centre is connected and redelivers what was not acknowledged, and the standby, once
active, takes over that session and the pending rows.

An active centre that loses its lock connection (the server restarted, the network cut)
can no longer know that it is the only one: ``watch`` then fails, and the service stops
rather than decode beside another active centre.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable

import psycopg

__all__ = ["Leadership", "LostLeadership", "lock_key"]

log = logging.getLogger(__name__)

POLL_S = 0.5  # a standby's lock attempts: the takeover's delay, at most
# After a takeover, before taking the MQTT session: time for the broker to see the old
# centre's connection close (a killed process's socket closes at once), so that the session
# passes from a closed connection rather than being taken from one the broker still counts
# as open. Mosquitto handles both; the embedded amqtt does not hand over a session while it
# is delivering QoS 1 messages to a killed client at all (docs/scaling.md).
TAKEOVER_GRACE_S = 1.0
WATCH_S = 1.0  # an active centre's check that its lock connection is alive


class LostLeadership(RuntimeError):
    """The lock's connection ended: another centre may be active now."""


def lock_key(deployment: str) -> int:
    """The advisory lock's key for a deployment: a stable signed 64-bit number."""
    digest = hashlib.sha256(f"epic-centre:{deployment}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Leadership:
    def __init__(self, url: str, deployment: str) -> None:
        self.url = _libpq_url(url)
        self.deployment = deployment
        self.key = lock_key(deployment)
        self._conn: psycopg.AsyncConnection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    async def acquire(self, on_standby: Callable[[], None] = lambda: None) -> bool:
        """Return once this centre holds the lock: True if it had to wait (a takeover);
        ``on_standby`` runs once when it starts to wait. A server that cannot be reached is
        retried, as a standby would wait for it."""
        waited = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            except psycopg.OperationalError as exc:
                log.warning("standby: the database cannot be reached (%s); retrying", _first(exc))
                await asyncio.sleep(POLL_S * 4)
                continue
            try:
                while True:
                    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                    row = await cursor.fetchone()
                    if row is not None and row[0]:
                        self._conn = conn
                        if waited:
                            log.warning("active: the other centre of %s is gone", self.deployment)
                        return waited
                    if not waited:
                        waited = True
                        log.warning(
                            "standby: another centre of deployment %s is active; taking over "
                            "when it stops",
                            self.deployment,
                        )
                        on_standby()
                    await asyncio.sleep(POLL_S)
            except psycopg.OperationalError as exc:
                log.warning("standby: lost the database (%s); reconnecting", _first(exc))
                await conn.close()
            except BaseException:
                await conn.close()
                raise

    async def watch(self) -> None:
        """Runs while the lock is held; raises ``LostLeadership`` when its connection ends."""
        assert self._conn is not None, "acquire() first"
        while True:
            await asyncio.sleep(WATCH_S)
            try:
                await self._conn.execute("SELECT 1")
            except psycopg.Error as exc:
                raise LostLeadership(
                    f"the lock of deployment {self.deployment} is lost ({_first(exc)}): another "
                    "centre may be active; stopping"
                ) from exc

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()  # the session ends: the server frees the lock


def _libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg://`` spelled as libpq takes it."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


def _first(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
