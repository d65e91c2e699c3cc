"""The store: maps and device health kept across restarts, retention and the list cursor (on
a SQLite file and on a PostgreSQL server: the ``location`` fixture), and a database that
fails at run time without losing the service or the maps."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from epic.central.schemas import MapSummary, MapTimings
from epic.central.store import MapStore
from epic.shared.errors import DataError


def summary(
    sample: str, version: int = 1, partial: bool = False, deployment: str = "demo"
) -> MapSummary:
    return MapSummary(
        sample_id=sample,
        version=version,
        partial=partial,
        devices_used=["dev-0", "dev-1"],
        devices_missing=["dev-2"] if partial else [],
        model_hash="530d0a14c3b92b14",
        deployment=deployment,
        timings=MapTimings(
            acquired_ns=1,
            first_arrival_ns=2,
            last_arrival_ns=3,
            decode_start_ns=4,
            decode_end_ns=5,
            decode_ms=0.0,
        ),
        velocity_min=1500.0,
        velocity_max=4500.0,
        velocity_mean=3000.0,
        ssim=0.5,
    )


def velocity(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(1500, 4500, (70, 70)).astype(np.float32)


def test_maps_round_trip_list_order_cursor_and_restart(location: str) -> None:
    async def main() -> None:
        store = MapStore(location, "demo")
        await store.open()
        for k in range(5):
            s = await store.save(summary(f"s{k}"), velocity(k))
            assert s.timings.stored_ns and s.timings.end_to_end_ms > 0
        await store.save(summary("s1", version=2), velocity(99))  # a refinement of s1
        latest = await store.latest()
        assert (latest.sample_id, latest.version) == ("s1", 2)
        got = await store.get("s3")
        assert np.array_equal(np.asarray(got.velocity, np.float32), velocity(3))
        assert (await store.get("s1", 1)).version == 1 and await store.get("s1", 3) is None
        assert await store.get("nope") is None
        listed = await store.list(10)
        # Newest first by first appearance; one row per sample, its newest version.
        assert [(m.sample_id, m.version) for m in listed] == [
            ("s4", 1),
            ("s3", 1),
            ("s2", 1),
            ("s1", 2),
            ("s0", 1),
        ]
        assert [m.sample_id for m in await store.list(2, before="s3")] == ["s2", "s1"]
        assert await store.list(5, before="unknown") == []
        await store.save_devices({"dev-0": {"latents_received": 7}})
        await store.close()

        again = MapStore(location, "demo")
        await again.open()
        assert again.count == 6
        assert (await again.latest()).sample_id == "s1"
        assert await again.load_devices() == {"dev-0": {"latents_received": 7}}
        assert await again.recent_sample_ids(3) == ["s1", "s4", "s3"]
        await again.close()

    asyncio.run(main())


def test_retention_keeps_the_newest(location: str) -> None:
    async def main() -> None:
        store = MapStore(location, "demo", retention=3)
        await store.open()
        for k in range(6):
            await store.save(summary(f"s{k}"), velocity(k))
        assert store.count == 3
        assert [m.sample_id for m in await store.list(10)] == ["s5", "s4", "s3"]
        await store.close()

    asyncio.run(main())


def test_a_locked_database_keeps_maps_in_memory_then_writes_them(tmp_path: Path) -> None:
    async def main() -> None:
        path = tmp_path / "c.sqlite"
        store = MapStore(path, "demo", memory_maps=2, busy_timeout_s=0.05)
        await store.open()
        await store.save(summary("s0"), velocity(0))
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            for k in (1, 2, 3):
                await store.save(summary(f"s{k}"), velocity(k))
            assert not store.healthy and store.lost == 1  # bound 2: s1 fell out
            assert (await store.latest()).sample_id == "s3"  # served from memory
            assert (await store.get("s2")).sample_id == "s2"
            assert [m.sample_id for m in await store.list(10)] == ["s3", "s2", "s0"]
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await store.save(summary("s4"), velocity(4))
        assert store.healthy and store.count == 4
        await store.close()
        check = sqlite3.connect(path)
        assert sorted(r[0] for r in check.execute("SELECT sample_id FROM maps")) == [
            "s0",
            "s2",
            "s3",
            "s4",
        ]
        check.close()

    asyncio.run(main())


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)

    async def main() -> None:
        store = MapStore(path, "demo")
        with pytest.raises(DataError, match="cannot open the map store"):
            await store.open()
        await store.close()

    asyncio.run(main())
