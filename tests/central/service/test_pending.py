"""The pending table (``epic.central.pending``) on a real SQLite file and a real PostgreSQL
server (the ``location`` fixture: every engine-neutral test runs on both): a row is committed before
its acknowledgement runs, rows come back in arrival order, a stored map removes the rows of
the latents it used (and only those), decided samples and the row bound remove the rest,
a failing database still acknowledges (and says so), and ``reload`` gives the assembler
back the open samples with a deadline counted from the restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from epic.central.assembler import Assembler
from epic.central.database import Database
from epic.central.database import pending as pending_table
from epic.central.pending import PendingLatents, PendingRow, reload
from epic.central.store import MapStore
from epic.central.validate import Validator

from .conftest import Feed
from .test_assembler import FakeClock


def row(sample: str, device: str, arrival_ns: int = 1, payload: bytes = b"x") -> PendingRow:
    return PendingRow(sample, device, f"epic/demo/latent/{sample}/{device}", payload, arrival_ns)


def on_disk(location: str | Path) -> list[tuple[str, str]]:
    """What another process would find in the database (the committed rows), in order."""
    engine = Database(location).engine
    c = pending_table.c
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(c.sample_id, c.device_id).order_by(c.seq)).all()
    finally:
        engine.dispose()
    return [(r[0], r[1]) for r in rows]


@contextlib.asynccontextmanager
async def writer(
    path: str | Path, max_rows: int = 1000, **store: float
) -> AsyncIterator[PendingLatents]:
    """A store, its pending table and the writer task running."""
    s = MapStore(path, "demo", **store)  # type: ignore[arg-type]
    await s.open()
    pending = PendingLatents(s, max_rows=max_rows)
    await pending.open()
    task = asyncio.create_task(pending.run())
    try:
        yield pending
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await s.close()


def test_acknowledged_only_once_committed_and_reloaded_in_arrival_order(location: str) -> None:
    db = location
    seen: list[tuple[str, list[tuple[str, str]]]] = []

    async def main() -> None:
        async with writer(db) as pending:
            keys = [("s2", "dev-1"), ("s1", "dev-0"), ("s2", "dev-0"), ("s1", "dev-2")]
            for sample, device in keys:
                on_durable = lambda k=(sample, device): seen.append((k, on_disk(db)))  # noqa: E731
                await pending.add(row(sample, device), on_durable)
            assert await pending.flush(5)
            assert pending.rows == 4 and pending.written == 4
            assert [(r.sample_id, r.device_id) for r in await pending.load()] == keys
        # Each acknowledgement ran with its row already in the file, and in arrival order.
        assert [k for k, _ in seen] == keys
        assert all(k in committed for k, committed in seen)
        async with writer(db) as again:  # and after a restart
            assert [(r.sample_id, r.device_id) for r in await again.load()] == keys
            assert again.rows == 4

    asyncio.run(main())


def test_a_stored_map_removes_its_latents_and_a_decided_sample_all_of_its_own(
    location: str,
) -> None:
    async def main() -> None:
        async with writer(location) as pending:
            for sample, device in [
                ("a", "dev-0"),
                ("a", "dev-1"),
                ("a", "dev-2"),
                ("b", "dev-0"),
                ("b", "dev-1"),
            ]:
                await pending.add(row(sample, device), None)
            # Version 1 of "a" used dev-0 and dev-1; dev-2 came late and waits for version 2.
            pending.used("a", ["dev-0", "dev-1"])
            await pending.flush(5)
            assert on_disk(location) == [
                ("a", "dev-2"),
                ("b", "dev-0"),
                ("b", "dev-1"),
            ]
            pending.used("a", ["dev-0", "dev-1", "dev-2"])  # version 2 stored
            pending.forget("b")  # dropped (too few devices, evicted)
            await pending.flush(5)
            assert on_disk(location) == [] and pending.rows == 0

    asyncio.run(main())


def test_a_removal_asked_before_its_row_is_written_still_removes_it(location: str) -> None:
    """The writer runs adds before removals in a round: a latent the assembler counted late
    (forget) right after the consumer queued its row leaves nothing behind."""

    async def main() -> None:
        async with writer(location) as pending:
            await pending.add(row("a", "dev-0"), None)
            pending.forget("a", "dev-0")  # same loop turn: both wait for the same round
            await pending.flush(5)
            assert on_disk(location) == []

    asyncio.run(main())


def test_the_first_copy_stays_and_rows_beyond_the_bound_go_oldest_first(
    location: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with writer(location, max_rows=3) as pending:
            await pending.add(row("a", "dev-0", payload=b"first"), None)
            await pending.add(row("a", "dev-0", payload=b"again"), None)  # a duplicate
            await pending.flush(5)
            [kept] = await pending.load()
            assert kept.payload == b"first" and pending.rows == 1
            for k in range(1, 5):
                await pending.add(row(f"s{k}", "dev-0"), None)
            await pending.flush(5)
            assert on_disk(location) == [
                ("s2", "dev-0"),
                ("s3", "dev-0"),
                ("s4", "dev-0"),
            ]
            assert pending.rows == 3 and pending.pruned == 2

    with caplog.at_level(logging.WARNING, "epic.central.pending"):
        asyncio.run(main())
    assert "pending latents beyond 3: the 2 oldest dropped" in caplog.text


def test_a_locked_database_still_acknowledges_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "c.sqlite"
    acked: list[str] = []

    async def main() -> None:
        async with writer(db, busy_timeout_s=0.1) as pending:
            other = sqlite3.connect(db, isolation_level=None)
            other.execute("BEGIN EXCLUSIVE")
            try:
                await pending.add(row("a", "dev-0"), lambda: acked.append("a"))
                assert await pending.flush(5)
            finally:
                other.rollback()
                other.close()
            assert acked == ["a"] and pending.unsaved == 1 and pending.written == 0
            # The database answers again: the next rows are written as usual.
            await pending.add(row("b", "dev-0"), lambda: acked.append("b"))
            await pending.flush(5)
            assert on_disk(db) == [("b", "dev-0")] and acked == ["a", "b"]

    with caplog.at_level(logging.WARNING, "epic.central.pending"):
        asyncio.run(main())
    assert (
        "pending latents not written" in caplog.text and "acknowledged all the same" in caplog.text
    )


def test_reload_opens_the_kept_samples_with_a_whole_deadline_from_now(
    location: str, feed: Feed
) -> None:
    clock = FakeClock()
    old_ns = clock.wall - 30 * 10**9  # they came 30 s before the restart
    devices = feed.devices

    async def main() -> None:
        async with writer(location) as pending:
            kept = [
                (feed.topic(0, devices[0]), feed.payload(0, devices[0], acquired_ns=old_ns)),
                (feed.topic(0, devices[1]), feed.payload(0, devices[1], acquired_ns=old_ns)),
                (feed.topic(1, devices[0]), feed.payload(1, devices[0], acquired_ns=old_ns)),
                (feed.topic(2, devices[0]), b"no longer a valid envelope"),
            ]
            for topic, payload in kept:
                _, _, _, sample, device = topic.split("/")
                await pending.add(PendingRow(sample, device, topic, payload, old_ns), None)
            await pending.flush(5)
            # Synced clock: a live sample acquired 30 s ago would be past its deadline.
            a = Assembler(devices, 2, 2000, t_dec_ms=500, clock=clock, clock_mode="synced")
            a.remember_closed([feed.sample_id(1)])  # its map was stored before the kill
            validator = Validator(feed.manifest, False, 4 * 1024 * 1024, clock_ns=clock.wall_ns)
            assert await reload(pending, validator, a) == 2
            assert a.depth == 1 and a.next_deadline() == pytest.approx(clock.t + 1.5)
            await pending.flush(5)
            # The decided sample's row and the invalid one are forgotten; the open one stays.
            assert on_disk(location) == [
                (feed.sample_id(0), devices[0]),
                (feed.sample_id(0), devices[1]),
            ]
            clock.advance(1.5)
            a.expire()
            [ready] = a.take_ready(4)
            assert ready.devices_used == devices[:2] and ready.partial
            assert ready.first_arrival_ns == old_ns  # the map's timings stay honest

    asyncio.run(main())


def test_only_a_store_in_a_file_keeps_latents(tmp_path: Path) -> None:
    """``--db :memory:`` would lose the table with the process: the service then keeps none
    and paho acknowledges on receipt (``test_acks``)."""
    assert MapStore(":memory:", "demo").in_memory
    assert not MapStore(tmp_path / "c.sqlite", "demo").in_memory
