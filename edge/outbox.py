"""The edge's disk-backed outbox: envelopes wait here until the broker acknowledges them.

SQLite in WAL mode, one row per envelope (topic, payload), in insertion order. The producer
appends; the publisher peeks the oldest rows, publishes them and deletes each after its
PUBACK, so a broker outage or a daemon restart loses nothing the outbox had room for. The
total payload size is bounded (``max_bytes``): when an append would pass it, the oldest rows
are dropped first and counted (fresh data is worth more than stale in a monitoring stream).

``synchronous=NORMAL`` in WAL mode survives a crash of the daemon (every committed row is in
the WAL file); only a power cut can lose the last transactions, a fair trade on an SD card.

Every SQLite call runs on one worker thread that owns the connection, never on the event
loop. Use ``async with await Outbox.open(path, max_bytes) as outbox: ...``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from epic.shared.errors import DataError, OptionError

__all__ = ["Outbox", "OutboxRow", "default_outbox_path"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: order survives deletes
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def default_outbox_path(deployment: str, device_id: str) -> Path:
    return Path.home() / ".local" / "state" / "epic" / f"outbox-{deployment}-{device_id}.sqlite"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    created_ns: int


class Outbox:
    """A bounded FIFO of ``(topic, payload)`` on disk. Construct with ``await Outbox.open``."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self.depth = 0
        self.bytes = 0
        # Rows dropped to stay within max_bytes, since this outbox file was made.
        self.dropped = 0
        self.dropped_bytes = 0
        # Set on every append, so a waiting publisher wakes up; ``empty`` while nothing waits.
        self.changed = asyncio.Event()
        self.empty = asyncio.Event()

    @classmethod
    async def open(cls, path: Path | str, max_bytes: int) -> Outbox:
        if max_bytes < 1:
            raise OptionError(path, f"outbox bound {max_bytes} bytes must be positive")
        outbox = cls(Path(path), max_bytes)
        try:
            await outbox._call(outbox._open)
        except BaseException:
            outbox._executor.shutdown(wait=True)
            raise
        if outbox.depth == 0:
            outbox.empty.set()
        return outbox

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- on the worker thread ------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            depth, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM outbox"
            ).fetchone()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise DataError(self.path, f"not a usable outbox ({exc})") from exc
        self._db = db
        self.depth, self.bytes = int(depth), int(size)
        row = db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        self.dropped = int(row[0]) if row else 0

    def _append(self, topic: str, payload: bytes, created_ns: int) -> int:
        db = self._require()
        size = len(payload)
        dropped = 0
        with db:  # one transaction: the drop and the insert land together
            db.execute("BEGIN IMMEDIATE")
            if size > self.max_bytes:
                # Larger than the whole outbox: keep what is queued, drop this one.
                dropped = 1
                self.dropped_bytes += size
            else:
                while self.bytes + size > self.max_bytes and self.depth:
                    oldest_id, oldest_size = db.execute(
                        "SELECT id, size FROM outbox ORDER BY id LIMIT 1"
                    ).fetchone()
                    db.execute("DELETE FROM outbox WHERE id = ?", (oldest_id,))
                    self.depth -= 1
                    self.bytes -= oldest_size
                    self.dropped_bytes += oldest_size
                    dropped += 1
                db.execute(
                    "INSERT INTO outbox (topic, payload, size, created_ns) VALUES (?, ?, ?, ?)",
                    (topic, payload, size, created_ns),
                )
                self.depth += 1
                self.bytes += size
            if dropped:
                self.dropped += dropped
                db.execute(
                    "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (self.dropped,),
                )
        return dropped

    def _peek(self, limit: int) -> list[OutboxRow]:
        rows = self._require().execute(
            "SELECT id, topic, payload, created_ns FROM outbox ORDER BY id LIMIT ?", (limit,)
        )
        return [OutboxRow(int(i), t, bytes(p), int(c)) for i, t, p, c in rows]

    def _delete(self, ids: list[int]) -> None:
        db = self._require()
        with db:
            db.execute("BEGIN IMMEDIATE")
            for row_id in ids:
                found = db.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING size", (row_id,)
                ).fetchone()
                if found is not None:  # may already be gone: dropped while in flight
                    self.depth -= 1
                    self.bytes -= int(found[0])

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _require(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the outbox is closed")
        return self._db

    # -- the async API ------------------------------------------------------------------
    async def append(self, topic: str, payload: bytes, created_ns: int) -> int:
        """Queue one envelope; returns how many old ones were dropped to make room."""
        dropped = await self._call(self._append, topic, bytes(payload), created_ns)
        if dropped:
            log.warning(
                "outbox full (%d B bound): dropped %d oldest envelope(s), %d dropped in all",
                self.max_bytes,
                dropped,
                self.dropped,
            )
        if self.depth:
            self.empty.clear()
        self.changed.set()
        return dropped

    async def peek(self, limit: int = 1) -> list[OutboxRow]:
        """The ``limit`` oldest rows, oldest first (they stay until ``delete``)."""
        return await self._call(self._peek, limit)

    async def delete(self, ids: list[int]) -> None:
        """Forget rows the broker has acknowledged."""
        if ids:
            await self._call(self._delete, list(ids))
        if self.depth == 0:
            self.empty.set()

    async def close(self) -> None:
        await self._call(self._close)
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
