"""The centre killed (SIGKILL) mid-stream and started again: the maps it had stored and its
devices' history are still there, and the samples whose latents waited in the broker for its
persistent session while it was down are decoded after the restart, complete.

The kill lands between two shots (once the newest shot's map is stored, at least 150 ms
before the next shot fires), so that every sample is complete after the restart whatever
the timing. A kill in the middle of a sample loses nothing either (the centre acknowledges a
latent only once it is in its store's ``pending`` table, and reloads those at start), but the
sample then decodes on the restarted centre's deadline: ``test_centre_crash_mid_sample``."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.brokers import BrokerProcess

from .central_process import CentralProcess
from .conftest import RATE, edge_config, edges_running, finished, sample_ids, start_slot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SHOTS = 24
DOWN_S = 3.0


async def wait_for(check: Callable, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"no {what} within {timeout} s") from None


async def kill_between_shots(centre: CentralProcess, stored: int) -> dict[str, dict]:
    """Kill once more than ``stored`` maps are in and the newest shot fired has its map
    (so none of its latents is in flight), well before the next shot; returns the maps
    stored then."""
    while True:
        now = time.time()
        fired = sample_ids(math.floor(now * RATE), 1)[0]
        next_shot = math.ceil(now * RATE) / RATE
        if next_shot - now > 0.25:
            maps = {m["sample_id"]: m for m in await _all_maps(centre)}
            done = fired in maps and not maps[fired]["devices_missing"]
            if len(maps) > stored and done and next_shot - time.time() > 0.15:
                centre.kill()
                return maps
        await asyncio.sleep(0.01)


def saved_devices(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, json_extract(health, '$.latents_received') FROM devices")
        return {device: n for device, n in rows if device != "?"}


def test_a_killed_centre_keeps_its_history_and_decodes_what_the_broker_kept(
    embedded_broker: BrokerProcess, bundle: Path, pool_cache: Path, tmp_path: Path
) -> None:
    centre = CentralProcess(bundle, embedded_broker.url, tmp_path, "--deadline-ms", "1500")

    async def main() -> None:
        await centre.start()
        await wait_for(lambda: _connected(centre), 20, "broker connection")
        devices = [d["id"] for d in (await centre.get("/api/devices"))["devices"]]
        first = start_slot()
        ids = sample_ids(first, SHOTS)
        configs = [
            edge_config(bundle, embedded_broker.url, d, first, SHOTS, tmp_path, pool_cache)
            for d in devices
        ]
        async with edges_running(configs) as daemons:
            await wait_for(lambda: _stored_at_least(centre, 3), 30, "first maps")
            # After the centre's first save of device health (every 5 s): what a SIGKILL
            # loses of the device counters is at most their last 5 s.
            await wait_for(lambda: _devices_saved(centre.db), 20, "device health saved")
            before = await asyncio.wait_for(kill_between_shots(centre, 4), 20)
            killed_at = time.time()
            await asyncio.sleep(DOWN_S)  # the edges keep going; the broker queues for it
            saved = saved_devices(centre.db)
            await centre.start()
            await finished(daemons, timeout=60)
        try:
            await wait_for(lambda: _complete(centre, ids), 30, "complete map of every sample")
        except AssertionError:
            maps = {m["sample_id"]: m for m in await _all_maps(centre)}
            short = {
                s: maps[s]["devices_missing"] if s in maps else "no map"
                for s in ids
                if s not in maps or maps[s]["devices_missing"]
            }
            raise AssertionError(f"not complete: {short}\n{centre.logs()[-3000:]}") from None
        after = {m["sample_id"]: m for m in (await _all_maps(centre))}
        # Every map stored before the kill is still there, unchanged.
        for sid, m in before.items():
            assert after[sid]["timings"] == m["timings"]
            old = await centre.get(f"/api/maps/{sid}")
            assert old["velocity"] == (await centre.get(f"/api/maps/{sid}", version=1))["velocity"]
        # Samples shot while the centre was down came from its broker session, complete.
        down = [sid for sid in ids if sid not in before]
        assert len(down) >= DOWN_S * RATE and all(not after[s]["partial"] for s in down)
        assert all(after[s]["timings"]["first_arrival_ns"] > killed_at * 1e9 for s in down)
        # Device history: what was saved before the kill, and everything since, counted on.
        health = {d["id"]: d for d in (await centre.get("/api/devices"))["devices"]}
        assert set(saved) == set(devices) and all(n > 0 for n in saved.values())
        for device in devices:
            assert health[device]["latents_received"] >= saved[device] + len(down)
            assert health[device]["rejected"] == {}
        assert "Traceback" not in centre.logs()

    try:
        asyncio.run(main())
    finally:
        centre.stop()


async def _devices_saved(db: Path) -> bool:
    return bool(await asyncio.to_thread(saved_devices, db))


async def _connected(centre: CentralProcess) -> bool:
    return (await centre.get("/api/health"))["broker_connected"]


async def _stored_at_least(centre: CentralProcess, n: int) -> bool:
    return (await centre.get("/api/health"))["maps_stored"] >= n


async def _all_maps(centre: CentralProcess) -> list[dict]:
    return (await centre.get("/api/maps", limit=500))["maps"]


async def _complete(centre: CentralProcess, ids: list[str]) -> bool:
    maps = {m["sample_id"]: m for m in await _all_maps(centre)}
    return all(sid in maps and not maps[sid]["devices_missing"] for sid in ids)
