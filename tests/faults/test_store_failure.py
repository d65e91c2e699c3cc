"""The centre's database failing under a running service: the disk full (the process's file
size limit, RLIMIT_FSIZE, makes SQLite answer "database or disk is full") and the database
locked by another process. Each time: one clear log line, the service stays up and serves
every map (from memory), health says the store is failing, at most ``memory_maps`` are kept
(the rest counted lost), and once the database answers again what was kept is written."""

from __future__ import annotations

import asyncio
import re
import resource
import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from epic.central.service import CentralService
from tests.central.service.conftest import Feed, publish
from tests.support.brokers import BrokerProcess

from .central_process import CentralProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FSIZE_LIMIT = 200 * 1024  # the database and its WAL may not grow past this


def _small_disk() -> None:
    # Soft limit only: the test raises it again (prlimit) to "free the disk".
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, resource.RLIM_INFINITY))


async def _until(check: Callable, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


def test_disk_full_keeps_the_service_up_and_the_maps_in_memory_until_it_is_freed(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, tmp_path: Path
) -> None:
    centre = CentralProcess(
        bundle, embedded_broker.url, tmp_path, "--deadline-ms", "800", preexec=_small_disk
    )
    samples = list(range(16))  # 16 x ~20 kB of velocities: far past the limit

    async def main() -> None:
        await centre.start()
        await _until(lambda: _health(centre, "broker_connected"), 20, "broker connection")
        await publish(
            embedded_broker.url, [feed.message(k, d) for k in samples for d in feed.devices]
        )
        await _until(lambda: _health(centre, "maps_decoded", len(samples)), 30, "every map")
        health = await centre.get("/api/health")
        assert health["store_ok"] is False and health["status"] == "degraded"
        assert health["maps_stored"] < len(samples)  # some reached the disk, the rest did not
        for k in samples:  # every map is served all the same
            got = await centre.get(f"/api/maps/{feed.sample_id(k)}")
            assert len(got["velocity"]) == 70 and not got["partial"]
        # SQLite names EFBIG "disk I/O error" (ENOSPC would read "database or disk is full").
        assert re.search(
            r"map store \S+ failing \((disk I/O error|database or disk is full)\)"
            r": \d+ maps kept in memory",
            centre.logs(),
        )
        # The disk is freed: the next map writes everything that waited in memory.
        assert centre.process is not None
        resource.prlimit(
            centre.process.pid,
            resource.RLIMIT_FSIZE,
            (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
        )
        await publish(embedded_broker.url, [feed.message(99, d) for d in feed.devices])
        await _until(lambda: _health(centre, "maps_stored", len(samples) + 1), 20, "flush")
        assert (await centre.get("/api/health"))["store_ok"] is True
        assert "answers again" in centre.logs() and centre.alive

    try:
        asyncio.run(main())
    finally:
        centre.stop()
    with sqlite3.connect(centre.db) as db:
        assert db.execute("SELECT COUNT(DISTINCT sample_id) FROM maps").fetchone()[0] == 17


async def _health(centre: CentralProcess, key: str, at_least: int | None = None) -> bool:
    value = (await centre.get("/api/health"))[key]
    return bool(value) if at_least is None else (value or 0) >= at_least


def test_a_locked_database_keeps_at_most_memory_maps_and_counts_the_rest(
    embedded_broker: BrokerProcess,
    bundle: Path,
    feed: Feed,
    settings_for: Callable,
    tmp_path: Path,
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, deadline_ms=800)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            svc.store.memory_maps = 2  # the bound (1,000 by default), small enough to reach
            locker = sqlite3.connect(settings.db, isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            try:
                messages = [feed.message(k, d) for k in range(4) for d in feed.devices]
                await publish(embedded_broker.url, messages)
                async with asyncio.timeout(40):  # each write waits out the busy timeout
                    while svc.pipeline.maps_decoded < 4:
                        await asyncio.sleep(0.1)
                health = svc.health()
                assert health.store_ok is False and health.status == "degraded"
                async with httpx.AsyncClient(base_url=svc.http.url, timeout=30) as http:
                    kept = [
                        k
                        for k in range(4)
                        if (await http.get(f"/api/maps/{feed.sample_id(k)}")).status_code == 200
                    ]
                    metrics = (await http.get("/metrics")).text
                assert kept == [2, 3]  # the newest two, in memory; the oldest two counted lost
                assert "epic_central_maps_lost_total 2.0" in metrics
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            await publish(embedded_broker.url, [feed.message(5, d) for d in feed.devices])
            async with asyncio.timeout(20):
                while svc.store.count < 3:
                    await asyncio.sleep(0.1)
            assert svc.health().store_ok is True and svc.store.lost == 2

    asyncio.run(main())
