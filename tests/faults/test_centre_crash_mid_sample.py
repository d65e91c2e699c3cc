"""The centre killed (SIGKILL), or stopped (SIGTERM), while samples are open in its
assembler: every latent it had received before is in the sample's map after the restart.

Two samples, each sent by three of the five devices, with a deadline long enough that
neither is decided before the stop. After the restart the other two devices send the first
sample (complete map, five devices) and nothing more comes for the second (partial map at
its deadline, counted from the restart, with the three devices sent before the stop).

Before the fix this failed (checked against the old code): the MQTT client acknowledged each
latent on receipt, so the broker forgot the six latents while they lived only in the killed
centre's memory; after the restart the first sample had two devices (fewer than the three
needed: dropped) and the second none. A clean stop lost them as well: the assembler's open
samples were simply discarded.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from tests.central.service.conftest import Feed, publish
from tests.support.brokers import BrokerProcess

from .central_process import CentralProcess
from .test_centre_crash import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

DEADLINE_MS = 6000  # neither sample may be decided before the stop (the stop comes in ~1 s)
BEFORE = ["dev-0", "dev-1", "dev-2"]
AFTER = ["dev-3", "dev-4"]


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_latents_of_open_samples_survive_the_centre_stopping(
    how: str, embedded_broker: BrokerProcess, bundle: Path, feed: Feed, tmp_path: Path
) -> None:
    centre = CentralProcess(
        bundle, embedded_broker.url, tmp_path, "--deadline-ms", str(DEADLINE_MS)
    )
    complete, partial = feed.sample_id(0), feed.sample_id(1)

    async def main() -> None:
        await centre.start()
        await wait_for(lambda: _health(centre, "broker_connected"), 20, "broker connection")
        await publish(embedded_broker.url, [feed.message(k, d) for k in (0, 1) for d in BEFORE])
        await wait_for(lambda: _received(centre, BEFORE, 2), 10, "the six latents received")
        # The centre writes and acknowledges within milliseconds of reading; a moment more
        # keeps a redelivery (a duplicate, harmless but counted) out of this test's figures.
        await asyncio.sleep(0.5)
        assert (await centre.get("/api/health"))["maps_stored"] == 0  # both still open
        stopped_at = time.time_ns()
        if how == "sigkill":
            centre.kill()
        else:
            assert centre.stop() == 0
        await centre.start()
        await publish(embedded_broker.url, [feed.message(0, d) for d in AFTER])
        await wait_for(lambda: _has_map(centre, complete), 20, f"map of {complete}")
        await wait_for(
            lambda: _has_map(centre, partial), DEADLINE_MS / 1000 + 20, f"map of {partial}"
        )
        whole = await centre.get(f"/api/maps/{complete}")
        assert whole["devices_used"] == BEFORE + AFTER and not whole["partial"]
        part = await centre.get(f"/api/maps/{partial}")
        assert part["devices_used"] == BEFORE and part["devices_missing"] == AFTER
        assert part["version"] == 1 and whole["version"] == 1
        # The maps' timings keep the first arrival from before the stop.
        assert part["timings"]["first_arrival_ns"] < stopped_at
        # Nothing counted twice: no duplicate, no late latent, nothing dropped.
        devices = (await centre.get("/api/devices"))["devices"]
        assert all(d["duplicates"] == 0 and d["late_latents"] == 0 for d in devices)
        assert (await centre.get("/api/health"))["samples_dropped"] == {}
        # The kept rows went once their maps were stored.
        await wait_for(lambda: _pending_rows(centre.db, 0), 5, "pending rows removed")
        assert "Traceback" not in centre.logs()

    try:
        asyncio.run(main())
    finally:
        centre.stop()


async def _health(centre: CentralProcess, key: str) -> bool:
    return bool((await centre.get("/api/health"))[key])


async def _received(centre: CentralProcess, devices: list[str], n: int) -> bool:
    got = {d["id"]: d["latents_received"] for d in (await centre.get("/api/devices"))["devices"]}
    return all(got.get(d, 0) >= n for d in devices)


async def _has_map(centre: CentralProcess, sample_id: str) -> bool:
    maps = (await centre.get("/api/maps", limit=50))["maps"]
    return any(m["sample_id"] == sample_id for m in maps)


async def _pending_rows(db: Path, n: int) -> bool:
    def count() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0]

    return await asyncio.to_thread(count) == n
