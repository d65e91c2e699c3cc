"""The store's database (``epic.central.database``): migrations that bring an older database
up by themselves and refuse a newer one, the same tables on SQLite and PostgreSQL, many
deployments in one database each seeing its own, and a PostgreSQL server that goes away and
comes back without a map lost."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from epic.central.database import SCHEMA_VERSION, Database, _v1_metadata, schema_version
from epic.central.pending import PendingLatents, PendingRow
from epic.central.store import MapStore
from epic.shared.errors import UserError
from tests.support.postgres import PostgresServer

from .test_store import summary, velocity

# The tables as the centre made them before the schema had versions (2026-11): files of
# that time must open unchanged, with what they hold.
BEFORE_VERSIONS = """
CREATE TABLE maps (
    sample_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL UNIQUE,
    first_seq INTEGER NOT NULL, deployment TEXT NOT NULL, model_hash TEXT NOT NULL,
    partial INTEGER NOT NULL, devices_used TEXT NOT NULL, devices_missing TEXT NOT NULL,
    nz INTEGER NOT NULL, nx INTEGER NOT NULL, velocity BLOB NOT NULL,
    acquired_ns INTEGER, first_arrival_ns INTEGER NOT NULL, last_arrival_ns INTEGER NOT NULL,
    decode_start_ns INTEGER NOT NULL, decode_end_ns INTEGER NOT NULL, stored_ns INTEGER,
    decode_ms REAL NOT NULL, end_to_end_ms REAL,
    velocity_min REAL NOT NULL, velocity_max REAL NOT NULL, velocity_mean REAL NOT NULL,
    ssim REAL,
    PRIMARY KEY (sample_id, version)
);
CREATE INDEX maps_first_seq ON maps (first_seq);
CREATE TABLE devices (id TEXT PRIMARY KEY, health TEXT NOT NULL, updated_ns INTEGER NOT NULL);
CREATE TABLE pending (
    seq INTEGER PRIMARY KEY, sample_id TEXT NOT NULL, device_id TEXT NOT NULL,
    topic TEXT NOT NULL, payload BLOB NOT NULL, arrival_ns INTEGER NOT NULL,
    UNIQUE (sample_id, device_id)
);
INSERT INTO devices VALUES ('dev-3', '{"latents_received": 41}', 1);
INSERT INTO maps VALUES ('s0', 1, 1, 1, 'demo', 'h', 0, '["dev-0"]', '[]', 1, 1, x'0000803f',
    NULL, 1, 2, 3, 4, 5, 1.0, NULL, 1.0, 1.0, 1.0, NULL);
INSERT INTO pending (sample_id, device_id, topic, payload, arrival_ns)
    VALUES ('s9', 'dev-3', 'epic/demo/latent/s9/dev-3', x'00', 5);
"""


def versions(location: str) -> list[int]:
    engine = Database(location).engine
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(select(schema_version.c.version))]
    finally:
        engine.dispose()


def test_a_file_from_before_versions_opens_with_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(BEFORE_VERSIONS)

    async def main() -> None:
        store = MapStore(path, "demo")
        await store.open()
        pending = PendingLatents(store, max_rows=100)
        await pending.open()
        assert await store.load_devices() == {"dev-3": {"latents_received": 41}}
        assert [(r.sample_id, r.device_id) for r in await pending.load()] == [("s9", "dev-3")]
        old_map = await store.get("s0")
        assert old_map is not None and old_map.velocity == [[1.0]]
        await store.save(summary("s1"), velocity(1))  # and the tables take new rows
        assert (await store.latest()).sample_id == "s1"  # type: ignore[union-attr]
        assert [m.sample_id for m in await store.list(10)] == ["s1", "s0"]
        await store.close()

    asyncio.run(main())
    assert versions(str(path)) == [SCHEMA_VERSION]


def test_migrating_again_changes_nothing_and_a_newer_schema_is_refused(location: str) -> None:
    async def cycle() -> None:
        store = MapStore(location, "demo")
        await store.open()
        await store.save(summary(f"s{store.count}"), velocity(store.count))
        await store.close()

    asyncio.run(cycle())
    asyncio.run(cycle())
    assert versions(location) == [SCHEMA_VERSION]
    engine = Database(location).engine
    with engine.begin() as conn:
        conn.execute(schema_version.update().values(version=SCHEMA_VERSION + 1))
    engine.dispose()
    with pytest.raises(UserError, match=r"newer than this EPIC's \d+: upgrade EPIC"):
        asyncio.run(cycle())


def test_a_server_that_cannot_be_reached_is_one_clear_error(
    postgres_server: PostgresServer,
) -> None:
    from tests.support.mosquitto import free_port

    url = f"postgresql://epic:secret@127.0.0.1:{free_port()}/epic"
    with pytest.raises(UserError) as caught:
        asyncio.run(MapStore(url, "demo").open())
    message = str(caught.value)
    assert "cannot open the map store" in message and "127.0.0.1" in message
    assert "secret" not in message and len(message.splitlines()) == 1
    assert message.startswith("postgresql://epic:***@127.0.0.1:") and "server up" in message


def test_a_postgresql_server_that_goes_away_keeps_maps_in_memory_then_writes_them(
    postgres_server: PostgresServer, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        store = MapStore(postgres_url, "demo")
        await store.open()
        await store.save(summary("s0"), velocity(0))
        postgres_server.stop("fast")
        try:
            await store.save(summary("s1"), velocity(1))
            await store.save(summary("s2"), velocity(2))
            assert not store.healthy
            # Reads are served from memory meanwhile.
            assert (await store.latest()).sample_id == "s2"  # type: ignore[union-attr]
        finally:
            postgres_server.start()
        await store.save(summary("s3"), velocity(3))
        assert store.healthy and store.count == 4 and store.lost == 0
        await store.close()
        again = MapStore(postgres_url, "demo")
        await again.open()
        assert [m.sample_id for m in await again.list(10)] == ["s3", "s2", "s1", "s0"]
        await again.close()

    with caplog.at_level(logging.WARNING, "epic.central.store"):
        asyncio.run(main())
    assert "failing" in caplog.text and "answers again" in caplog.text


def test_deployments_in_one_database_each_see_their_own(location: str) -> None:
    """Same sample ids, same device ids: nothing of one deployment shows in the other, and
    one's retention never deletes the other's maps."""

    async def main() -> None:
        north = MapStore(location, "north", retention=2)
        south = MapStore(location, "south")
        await north.open()
        await south.open()
        for k in range(3):
            await south.save(summary(f"s{k}", deployment="south"), velocity(10 + k))
            await north.save(summary(f"s{k}", deployment="north"), velocity(k))
        assert north.count == 2 and south.count == 3
        assert [m.sample_id for m in await north.list(10)] == ["s2", "s1"]
        assert [m.sample_id for m in await south.list(10)] == ["s2", "s1", "s0"]
        got = await south.get("s2")
        assert got is not None and got.deployment == "south"
        assert np.array_equal(np.asarray(got.velocity, np.float32), velocity(12))
        await north.save_devices({"dev-0": {"latents_received": 1}})
        await south.save_devices({"dev-0": {"latents_received": 2}})
        assert await north.load_devices() == {"dev-0": {"latents_received": 1}}
        with pytest.raises(ValueError, match="a map of deployment 'south' in 'north'"):
            await north.save(summary("s9", deployment="south"), velocity(0))
        kept = [PendingLatents(store, max_rows=1) for store in (north, south)]
        for pending in kept:
            await pending.open()
        writers = [asyncio.create_task(pending.run()) for pending in kept]
        await kept[0].add(PendingRow("s5", "dev-0", "t", b"n", 1), None)
        await kept[1].add(PendingRow("s5", "dev-0", "t", b"s", 1), None)
        await kept[1].add(PendingRow("s6", "dev-0", "t", b"s", 2), None)  # one over its bound
        assert all([await pending.flush(5) for pending in kept])
        assert [r.payload for r in await kept[0].load()] == [b"n"]  # untouched by south's
        assert [(r.sample_id, r.payload) for r in await kept[1].load()] == [("s6", b"s")]
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)
        await north.close()
        await south.close()

    asyncio.run(main())


def test_a_version_1_database_moves_to_this_version_with_its_rows(location: str) -> None:
    """Version 1 (one deployment a database) to 2 (deployments apart), on both engines: the
    rows of tables that had no deployment become the opening centre's."""
    engine = Database(location).engine
    v1 = _v1_metadata.tables
    with engine.begin() as conn:
        _v1_metadata.create_all(conn)
        schema_version.create(conn)
        conn.execute(schema_version.insert().values(version=1))
        conn.execute(v1["devices"].insert().values(id="dev-3", health="{}", updated_ns=1))
        pending_row = dict(sample_id="s9", device_id="dev-3", topic="t", payload=b"p", arrival_ns=1)
        conn.execute(v1["pending"].insert(), [pending_row, {**pending_row, "device_id": "dev-4"}])
    engine.dispose()

    async def main() -> None:
        store = MapStore(location, "demo")
        await store.open()
        await store.save(summary("s1"), velocity(1))
        pending = PendingLatents(store, max_rows=10)
        await pending.open()
        assert pending.rows == 2
        assert [r.device_id for r in await pending.load()] == ["dev-3", "dev-4"]  # in order
        assert await store.load_devices() == {"dev-3": {}}
        await store.close()

    asyncio.run(main())
    assert versions(location) == [SCHEMA_VERSION] == [3]
