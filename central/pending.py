"""Latents the centre holds but has not yet turned into a stored map, kept in the map store's
database (table ``pending``, ``epic.central.database``), so that the centre acknowledges a
latent to the broker only once it would survive a crash, and finds it again at start
(docs/reliability.md).

Life of a row (one per sample and device; the first copy wins, as in the assembler):
- ``add`` (the consumer, every valid latent or raw block, in arrival order): written in
  the writer's next round; its ``on_durable`` (the PUBACK) runs once that round commits.
- ``used`` (a map stored, any version): the rows of the latents that map used go. A late
  latent waiting to refine the map keeps its row until the refined version is stored.
- ``forget`` (a latent counted late; a sample dropped: too few devices, evicted, decode
  error): its rows go, so a restart does not bring back what was decided.
- Beyond ``max_rows`` the oldest go, counted and logged. Rows the above missed (a removal
  while the database failed, a duplicate written after its sample's map) are few; ``reload``
  drops those whose sample is already decided, and the bound drops the rest.
- ``reload`` at start feeds what is left to the assembler, in arrival order.

One writer task makes every change, in rounds: a round takes all the adds waiting and then
all the removals waiting, and runs them (adds first) as one transaction on the store's
thread. A removal is always asked after its row's add (the consumer queues the add before
the assembler sees the arrival), so a round never removes a row before writing it.

Durable means committed: on SQLite with WAL and ``synchronous=NORMAL`` (the store's
setting) it survives the process being killed (SIGKILL, OOM), and a power cut can lose the
last commits; on PostgreSQL it survives the centre's machine as well.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from epic.central.assembler import Assembler, Outcome
from epic.central.database import DatabaseError, pending, reading, writing
from epic.central.ratelimit import RateLimitedLog
from epic.central.store import MapStore
from epic.central.validate import Arrival, Rejected, Validator

__all__ = ["PendingLatents", "PendingRow", "reload"]

log = logging.getLogger(__name__)

ADDS_BOUND = 4096  # latents read but not yet written: the read loop waits beyond this
REMOVALS_BOUND = 65_536  # removals asked but not yet run; beyond, the oldest are skipped


@dataclass(frozen=True)
class PendingRow:
    """One message as it came (topic and payload: validated again at reload)."""

    sample_id: str
    device_id: str
    topic: str
    payload: bytes
    arrival_ns: int


Removal = tuple[str, str | None]  # (sample, device); device None: all of the sample's rows


class PendingLatents:
    def __init__(self, store: MapStore, max_rows: int) -> None:
        self.store = store
        self.max_rows = max_rows
        self.rows = 0  # in the table, as far as this process knows
        self.written = 0
        self.unsaved = 0  # acknowledged although their write failed
        self.pruned = 0
        self._adds: asyncio.Queue[tuple[PendingRow, Callable[[], None] | None]] = asyncio.Queue(
            ADDS_BOUND
        )
        self._removals: deque[Removal] = deque()
        self._wake = asyncio.Event()
        self._queued = 0  # adds ever queued; ``_done`` catches up round by round
        self._done = 0
        self._round_done = asyncio.Event()
        self._warn = RateLimitedLog(log)

    # -- start ----------------------------------------------------------------------------
    async def open(self) -> None:
        self.rows = await self.store.call(functools.partial(_count, self.store.deployment)) or 0

    async def load(self) -> list[PendingRow]:
        """Every row of this deployment, in arrival order."""
        return await self.store.call(functools.partial(_load, self.store.deployment)) or []

    # -- changes --------------------------------------------------------------------------
    async def add(self, row: PendingRow, on_durable: Callable[[], None] | None) -> None:
        """Queue ``row``; waits only while ``ADDS_BOUND`` rows wait (a stalled database)."""
        await self._adds.put((row, on_durable))
        self._queued += 1
        self._wake.set()

    def used(self, sample_id: str, devices: Sequence[str]) -> None:
        for device in devices:
            self._remove((sample_id, device))

    def forget(self, sample_id: str, device: str | None = None) -> None:
        self._remove((sample_id, device))

    def _remove(self, removal: Removal) -> None:
        if len(self._removals) >= REMOVALS_BOUND:
            self._removals.popleft()  # its row stays until reload or the row bound
            self._warn.warning("removals", "pending-latent removals behind; some rows stay")
        self._removals.append(removal)
        self._wake.set()

    async def flush(self, timeout: float) -> bool:
        """Wait until every add queued so far is written (or given up); False on timeout."""
        target = self._queued
        try:
            async with asyncio.timeout(timeout):
                while self._done < target or self._removals:
                    self._round_done.clear()
                    self._wake.set()
                    await self._round_done.wait()
        except TimeoutError:
            return False
        return True

    # -- the writer -----------------------------------------------------------------------
    async def run(self) -> None:
        """Write rounds until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            adds = [self._adds.get_nowait() for _ in range(self._adds.qsize())]
            removals = list(self._removals)
            self._removals.clear()
            if adds or removals:
                rows = [
                    {
                        "deployment": self.store.deployment,
                        "sample_id": r.sample_id,
                        "device_id": r.device_id,
                        "topic": r.topic,
                        "payload": r.payload,
                        "arrival_ns": r.arrival_ns,
                    }
                    for r, _ in adds
                ]
                result = await self.store.call(
                    functools.partial(self._round, rows=rows, removals=removals)
                )
                if result is None:  # failed (said once a minute) or closed: acked all the same
                    self.unsaved += len(adds)
                else:
                    self.written += len(adds)
                # Acks only now: the rows are committed (or could not be, and we said so).
                for _, on_durable in adds:
                    if on_durable is not None:
                        on_durable()
                self._done += len(adds)
            self._round_done.set()

    def _round(self, db: Connection, rows: list[dict], removals: list[Removal]) -> int | None:
        whole = [s for s, d in removals if d is None]
        pairs = [(s, d) for s, d in removals if d is not None]
        c = pending.c
        mine = c.deployment == self.store.deployment
        try:
            with writing(db):
                if rows:
                    db.execute(self.store.database.insert_new(pending, _KEY), rows)
                for sample, device in pairs:
                    db.execute(
                        pending.delete().where(mine, c.sample_id == sample, c.device_id == device)
                    )
                if whole:
                    db.execute(pending.delete().where(mine, c.sample_id.in_(whole)))
                # Counted, not summed from rowcounts: drivers differ on executemany's.
                count = db.execute(select(func.count()).where(mine)).scalar_one()
                pruned = 0
                if count > self.max_rows:
                    newest_kept = (
                        select(c.seq)
                        .where(mine)
                        .order_by(c.seq.desc())
                        .limit(1)
                        .offset(self.max_rows)
                        .scalar_subquery()
                    )
                    pruned = db.execute(pending.delete().where(mine, c.seq <= newest_kept)).rowcount
                    count -= pruned
        except DatabaseError as exc:
            self._warn.warning(
                "pending",
                "pending latents not written to %s (%s): acknowledged all the same; "
                "a crash now loses the samples they belong to",
                self.store.path,
                getattr(exc, "orig", None) or exc,
            )
            return None
        self.rows = count
        if pruned:
            self.pruned += pruned
            self._warn.warning(
                "pruned",
                "pending latents beyond %d: the %d oldest dropped (never decoded)",
                self.max_rows,
                pruned,
            )
        return len(rows)


_KEY = ["deployment", "sample_id", "device_id"]


def _count(deployment: str, db: Connection) -> int:
    # The table itself comes with the store's migrations (epic.central.database).
    with reading(db):
        query = select(func.count()).where(pending.c.deployment == deployment)
        return int(db.execute(query).scalar_one())


def _load(deployment: str, db: Connection) -> list[PendingRow]:
    c = pending.c
    query = (
        select(c.sample_id, c.device_id, c.topic, c.payload, c.arrival_ns)
        .where(c.deployment == deployment)
        .order_by(c.seq)
    )
    with reading(db):
        rows = db.execute(query).all()
    return [PendingRow(s, d, t, bytes(p), a) for s, d, t, p, a in rows]


async def reload(pending: PendingLatents, validator: Validator, assembler: Assembler) -> int:
    """Give the assembler what the store kept (before the consumer starts); returns how many
    latents it took. Samples it opens get a whole deadline from now (``Assembler.add``,
    ``restored``). Rows of decided samples (their map stored, or dropped) and rows no longer
    valid (another model deployed since) are forgotten. The device counters are not touched:
    each latent was counted when it first came."""
    taken = 0
    for row in await pending.load():
        try:
            item = validator.message(row.topic, row.payload, arrival_ns=row.arrival_ns)
        except Rejected as rejected:
            log.warning(
                "a kept latent %s/%s is no longer valid (%s): forgotten",
                row.sample_id,
                row.device_id,
                rejected,
            )
            pending.forget(row.sample_id, row.device_id)
            continue
        assert isinstance(item, Arrival)  # only latent and raw topics are kept
        if assembler.add(item, restored=True) is Outcome.LATE:
            pending.forget(row.sample_id, row.device_id)
        else:
            taken += 1
    if taken:
        log.warning(
            "%d latents kept across the restart are back in the buffer (%d samples)",
            taken,
            assembler.depth,
        )
    return taken
