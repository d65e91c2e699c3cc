"""The centre's store: every map (velocities, devices, timings) and every device's health,
so a restart keeps history; in a SQLite file (the default) or PostgreSQL
(``epic.central.database``: the tables, the engines' differences, the migrations).

One connection, used only by one dedicated thread (every method hops onto it); SQLite runs
in WAL mode so readers never wait for the writer. Maps beyond ``retention`` are deleted
oldest first. When the database fails at run time (locked, disk full, server gone), the
store logs one line per minute, keeps maps in memory (``memory_maps`` at most, oldest
dropped and counted), serves reads from memory as well, and writes them out once the
database answers again.

Order: ``seq`` counts stores, so "latest" is the last map stored; a sample's refined
versions keep its ``first_seq``, so listing by ``first_seq`` puts a sample where it first
appeared and a ``before`` cursor stays stable while refinements arrive.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, LargeBinary, func, literal, select

from epic.central.database import (
    Database,
    DatabaseError,
    centres,
    devices,
    maps,
    reading,
    writing,
)
from epic.central.ratelimit import RateLimitedLog
from epic.central.schemas import MapDetail, MapSummary, MapTimings
from epic.shared.errors import DataError, OptionError

__all__ = ["MapStore", "StoreUnavailable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_TIMINGS = list(MapTimings.model_fields)
_COLUMNS = [
    "sample_id",
    "version",
    "seq",
    "first_seq",
    "deployment",
    "model_hash",
    "partial",
    "devices_used",
    "devices_missing",
    "nz",
    "nx",
    "velocity",
    *_TIMINGS,
    "velocity_min",
    "velocity_max",
    "velocity_mean",
    "ssim",
]
_SELECT = select(*(maps.c[name] for name in _COLUMNS))
# The same row without its 19 kB of velocities: what lists and live events need.
_SUMMARY_SELECT = select(
    *(
        literal(b"", LargeBinary).label(name) if name == "velocity" else maps.c[name]
        for name in _COLUMNS
    )
)

Row = tuple[Any, ...]


class StoreUnavailable(RuntimeError):
    """The database refused a change asked for through the API (locked, disk full...)."""


class MapStore:
    def __init__(
        self,
        path: Path | str,
        deployment: str,
        retention: int = 10_000,
        memory_maps: int = 1_000,
        busy_timeout_s: float = 2.0,
        on_lost: Callable[[int], None] = lambda n: None,
    ) -> None:
        """``path``: a SQLite file, ``:memory:``, or a ``postgresql://`` URL; ``deployment``:
        whose maps and devices these are (a database may hold several: each sees its own)."""
        self.database = Database(path, busy_timeout_s)
        self.deployment = deployment
        self._mine = maps.c.deployment == deployment
        self.path = self.database.shown  # for messages: a URL without its password
        self.retention = retention
        self.memory_maps = memory_maps
        self.busy_timeout_s = busy_timeout_s
        self.count = 0  # maps in the database
        self.healthy = True
        self.lost = 0  # maps dropped from memory while the database was failing
        self.on_lost = on_lost
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epic-store")
        self._db: Connection | None = None
        self._seq = 0
        self._pending: OrderedDict[tuple[str, int], Row] = OrderedDict()  # not yet written
        self._warn = RateLimitedLog(log)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @property
    def in_memory(self) -> bool:
        """``--db :memory:``: nothing survives the process, so nothing is worth waiting for."""
        return self.database.in_memory

    async def call(self, fn: Callable[[Connection], T]) -> T | None:
        """Run ``fn(connection)`` on the store's thread: another table of the same database
        (``epic.central.pending``) shares the one connection and its order of work. ``None``
        when the store is closed."""
        return await self._run(lambda: None if self._db is None else fn(self._db))

    # -- life -----------------------------------------------------------------------------
    async def open(self) -> None:
        """Open (creating) the database; a file that is not one raises ``DataError``."""
        await self._run(self._open)

    def _open(self) -> None:
        try:
            db = self.database.open(self.deployment)
            with reading(db):
                count, seq = db.execute(
                    select(func.count(), func.coalesce(func.max(maps.c.seq), 0)).where(self._mine)
                ).one()
        except (DatabaseError, OSError) as exc:
            problem = f"cannot open the map store ({_reason(exc)})"
            if self.database.server:  # a URL, kept as written (a path would fold its //)
                raise OptionError(
                    self.path, f"{problem}; is the server up, the URL right?"
                ) from exc
            raise DataError(self.path, problem) from exc
        self.count, self._seq = int(count), int(seq)
        self._db = db

    async def close(self) -> None:
        await self._run(self._close)
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._flush()
            if self._pending:
                log.warning("%d maps could not be written before closing", len(self._pending))
            self._db.close()
            self._db = None
            self.database.dispose()

    # -- writing --------------------------------------------------------------------------
    async def save(self, summary: MapSummary, velocity: np.ndarray) -> MapSummary:
        """Store one map; returns its summary with ``stored_ns`` (and end-to-end) filled."""
        return await self._run(self._save, summary, velocity)

    def _save(self, summary: MapSummary, velocity: np.ndarray) -> MapSummary:
        if summary.deployment != self.deployment:
            raise ValueError(
                f"a map of deployment {summary.deployment!r} in {self.deployment!r}'s store"
            )
        stored_ns = time.time_ns()
        t = summary.timings
        acquired = t.acquired_ns
        e2e = (stored_ns - acquired) / 1e6 if acquired is not None else None
        summary = summary.model_copy(
            update={"timings": t.model_copy(update={"stored_ns": stored_ns, "end_to_end_ms": e2e})}
        )
        self._seq += 1
        first_seq = self._first_seq(summary.sample_id) if summary.version > 1 else None
        row = _row(summary, velocity, self._seq, first_seq or self._seq)
        self._pending[(summary.sample_id, summary.version)] = row
        self._flush()
        while len(self._pending) > self.memory_maps:
            self._pending.popitem(last=False)
            self.lost += 1
            self.on_lost(1)
        return summary

    def _flush(self) -> None:
        """Write what waits in memory; on failure keep it there and say so (once a minute)."""
        if not self._pending or self._db is None:
            return
        rows = [dict(zip(_COLUMNS, r, strict=True)) for r in self._pending.values()]
        try:
            with writing(self._db) as db:  # one transaction
                keys = ["deployment", "sample_id", "version"]
                db.execute(self.database.replace(maps, keys), rows)
                count = db.execute(
                    select(func.count()).select_from(maps).where(self._mine)
                ).scalar_one()
                if count > self.retention:
                    newest_kept = (
                        select(maps.c.seq)
                        .where(self._mine)
                        .order_by(maps.c.seq.desc())
                        .limit(1)
                        .offset(self.retention)
                        .scalar_subquery()
                    )
                    db.execute(maps.delete().where(self._mine, maps.c.seq <= newest_kept))
                    count = self.retention
                self.database.notify(db, self.deployment)
            self.count = count
        except DatabaseError as exc:
            self.count = self._count_or(self.count)
            self.healthy = False
            self._warn.warning(
                "db",
                "map store %s failing (%s): %d maps kept in memory until it answers",
                self.path,
                _reason(exc),
                len(self._pending),
            )
            return
        if not self.healthy:
            log.warning("map store %s answers again; maps kept in memory written", self.path)
        self.healthy = True
        self._pending.clear()

    def _count_or(self, fallback: int) -> int:
        if self._db is None:
            return fallback
        try:
            with reading(self._db) as db:
                count = select(func.count()).select_from(maps).where(self._mine)
                return int(db.execute(count).scalar_one())
        except DatabaseError:
            return fallback

    def _first_seq(self, sample_id: str) -> int | None:
        seqs = [r[3] for (sid, _), r in self._pending.items() if sid == sample_id]
        found = self._query(
            select(func.min(maps.c.first_seq)).where(self._mine, maps.c.sample_id == sample_id)
        )
        if found and found[0][0] is not None:
            seqs.append(found[0][0])
        return min(seqs) if seqs else None

    async def delete(self, sample_id: str) -> int:
        """Delete every version of a sample's map; how many there were."""
        return await self._run(self._delete, sample_id)

    def _delete(self, sample_id: str) -> int:
        waiting = [key for key in self._pending if key[0] == sample_id]
        for key in waiting:
            del self._pending[key]
        if self._db is None:
            return len(waiting)
        try:
            with writing(self._db) as db:
                deleted = db.execute(
                    maps.delete().where(self._mine, maps.c.sample_id == sample_id)
                ).rowcount
        except DatabaseError as exc:
            raise StoreUnavailable(f"map store {self.path}: {_reason(exc)}") from exc
        self.count -= deleted
        return len(waiting) + deleted

    # -- reading --------------------------------------------------------------------------
    def _query(self, statement: Any) -> list[Row]:
        if self._db is None:
            return []
        try:
            with reading(self._db) as db:
                return [tuple(r) for r in db.execute(statement)]
        except DatabaseError as exc:
            self._warn.warning("db-read", "map store %s read failed (%s)", self.path, _reason(exc))
            return []

    async def latest(self) -> MapDetail | None:
        return await self._run(self._latest)

    def _latest(self) -> MapDetail | None:
        rows = self._query(_SELECT.where(self._mine).order_by(maps.c.seq.desc()).limit(1))
        rows += list(self._pending.values())
        return _detail(max(rows, key=lambda r: r[2])) if rows else None

    async def get(self, sample_id: str, version: int | None = None) -> MapDetail | None:
        return await self._run(self._get, sample_id, version)

    def _get(self, sample_id: str, version: int | None) -> MapDetail | None:
        query = _SELECT.where(self._mine, maps.c.sample_id == sample_id)
        if version is None:
            rows = self._query(query.order_by(maps.c.version.desc()).limit(1))
        else:
            rows = self._query(query.where(maps.c.version == version))
        rows += [
            r for (sid, v), r in self._pending.items() if sid == sample_id and version in (None, v)
        ]
        return _detail(max(rows, key=lambda r: r[1])) if rows else None

    async def list(self, limit: int, before: str | None = None) -> list[MapSummary]:
        return await self._run(self._list, limit, before)

    # From here on `list` names the method above: annotations spell the type builtins.list.
    def _list(self, limit: int, before: str | None) -> builtins.list[MapSummary]:
        bound = None
        if before is not None:
            bound = self._first_seq(before)
            if bound is None:
                return []  # an unknown cursor: nothing is "before" it
        other = maps.alias("other")
        is_newest = maps.c.version == (
            select(func.max(other.c.version))
            .where(other.c.deployment == maps.c.deployment, other.c.sample_id == maps.c.sample_id)
            .scalar_subquery()
        )
        query = _SUMMARY_SELECT.where(self._mine, is_newest)  # a row per sample: its newest
        if bound is not None:
            query = query.where(maps.c.first_seq < bound)
        rows = self._query(query.order_by(maps.c.first_seq.desc()).limit(limit))
        rows += [r for r in self._pending.values() if bound is None or r[3] < bound]
        newest: dict[str, Row] = {}
        for r in rows:
            if r[0] not in newest or r[1] > newest[r[0]][1]:
                newest[r[0]] = r
        ordered = sorted(newest.values(), key=lambda r: r[3], reverse=True)[:limit]
        return [_summary(r) for r in ordered]

    async def recent_sample_ids(self, n: int) -> builtins.list[str]:
        newest = func.max(maps.c.seq)
        query = (
            select(maps.c.sample_id)
            .where(self._mine)
            .group_by(maps.c.sample_id)
            .order_by(newest.desc())
        )
        rows = await self._run(self._query, query.limit(n))
        return [r[0] for r in rows]

    # -- devices --------------------------------------------------------------------------
    async def save_devices(
        self, health: dict[str, dict], snapshots: dict[str, str] | None = None
    ) -> None:
        """``health``: the counters a restarted centre restores, by device; ``snapshots``:
        each device's ``DeviceHealth`` as JSON, as the monitor shows it (``epic api``)."""
        await self._run(self._save_devices, health, snapshots or {})

    def _save_devices(self, health: dict[str, dict], snapshots: dict[str, str]) -> None:
        if self._db is None or not health:
            return
        now = time.time_ns()
        rows = [
            {
                "deployment": self.deployment,
                "id": k,
                "health": json.dumps(v),
                "updated_ns": now,
                "snapshot": snapshots.get(k),
            }
            for k, v in health.items()
        ]
        try:
            with writing(self._db) as db:
                db.execute(self.database.replace(devices, ["deployment", "id"]), rows)
                self.database.notify(db, self.deployment)
        except DatabaseError as exc:
            self._warn.warning("db-devices", "device health not saved (%s)", _reason(exc))

    async def save_health(self, health_json: str) -> None:
        """The centre's own ``Health`` as JSON, for ``epic api`` processes to serve."""
        await self._run(self._save_health, health_json)

    def _save_health(self, health_json: str) -> None:
        if self._db is None:
            return
        row = {"deployment": self.deployment, "health": health_json, "updated_ns": time.time_ns()}
        try:
            with writing(self._db) as db:
                db.execute(self.database.replace(centres, ["deployment"]), [row])
        except DatabaseError as exc:
            self._warn.warning("db-health", "centre health not saved (%s)", _reason(exc))

    async def load_devices(self) -> dict[str, dict]:
        query = select(devices.c.id, devices.c.health).where(
            devices.c.deployment == self.deployment
        )
        rows = await self._run(self._query, query)
        out = {}
        for device_id, text in rows:
            try:
                out[device_id] = json.loads(text)
            except ValueError:
                log.warning("device %s: stored health unreadable, starting afresh", device_id)
        return out

    # -- what an ``epic api`` process reads (epic.central.stored_view) -----------------------
    async def newest_seq(self) -> int:
        rows = await self._run(
            self._query, select(func.coalesce(func.max(maps.c.seq), 0)).where(self._mine)
        )
        return int(rows[0][0]) if rows else 0

    async def stored_since(
        self, seq: int, limit: int = 200
    ) -> builtins.list[tuple[int, MapSummary]]:
        """(seq, map) of the maps (every version) stored after ``seq``, oldest first."""
        query = (
            _SUMMARY_SELECT.where(self._mine, maps.c.seq > seq).order_by(maps.c.seq).limit(limit)
        )
        return [(int(r[2]), _summary(r)) for r in await self._run(self._query, query)]

    async def device_snapshots(self) -> builtins.list[tuple[str, str, int]]:
        """(id, ``DeviceHealth`` JSON, updated_ns) of every device its centre showed."""
        query = (
            select(devices.c.id, devices.c.snapshot, devices.c.updated_ns)
            .where(devices.c.deployment == self.deployment, devices.c.snapshot.is_not(None))
            .order_by(devices.c.id)
        )
        return [(r[0], r[1], int(r[2])) for r in await self._run(self._query, query)]

    async def centre_health(self) -> tuple[str, int] | None:
        """(``Health`` JSON, updated_ns) as its centre last wrote them, or None."""
        query = select(centres.c.health, centres.c.updated_ns).where(
            centres.c.deployment == self.deployment
        )
        rows = await self._run(self._query, query)
        return (rows[0][0], int(rows[0][1])) if rows else None


def _reason(exc: BaseException) -> str:
    """The driver's own first line (SQLAlchemy appends the SQL and a link)."""
    inner = getattr(exc, "orig", None) or exc
    return (str(inner).strip().splitlines() or [type(inner).__name__])[0]


def _row(s: MapSummary, velocity: np.ndarray, seq: int, first_seq: int) -> Row:
    v = np.ascontiguousarray(velocity, dtype="<f4")
    timings = [getattr(s.timings, k) for k in _TIMINGS]
    return (
        s.sample_id,
        s.version,
        seq,
        first_seq,
        s.deployment,
        s.model_hash,
        int(s.partial),
        json.dumps(s.devices_used),
        json.dumps(s.devices_missing),
        v.shape[0],
        v.shape[1],
        v.tobytes(),
        *timings,
        s.velocity_min,
        s.velocity_max,
        s.velocity_mean,
        s.ssim,
    )


def _fields(r: Row) -> dict[str, Any]:
    d = dict(zip(_COLUMNS, r, strict=True))
    return {
        "sample_id": d["sample_id"],
        "version": d["version"],
        "partial": bool(d["partial"]),
        "devices_used": json.loads(d["devices_used"]),
        "devices_missing": json.loads(d["devices_missing"]),
        "model_hash": d["model_hash"],
        "deployment": d["deployment"],
        "timings": MapTimings(**{k: d[k] for k in _TIMINGS}),
        "velocity_min": d["velocity_min"],
        "velocity_max": d["velocity_max"],
        "velocity_mean": d["velocity_mean"],
        "ssim": d["ssim"],
    }


def _summary(r: Row) -> MapSummary:
    return MapSummary(**_fields(r))


def _detail(r: Row) -> MapDetail:
    nz, nx, blob = r[_COLUMNS.index("nz")], r[_COLUMNS.index("nx")], r[_COLUMNS.index("velocity")]
    velocity = np.frombuffer(blob, "<f4").reshape(nz, nx)
    return MapDetail(**_fields(r), velocity=velocity.astype(np.float64).tolist())
