"""``epic api``'s view of a database (``epic.central.stored_view``): every deployment the
centres write, each with its own maps, devices, health and live events, on SQLite (polled)
and on a real PostgreSQL server (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from epic.central import stored_view
from epic.central.deployments import UnknownDeployment
from epic.central.schemas import Health
from epic.central.store import MapStore
from epic.central.stored_view import StoredDeployments
from epic.central.view import ServiceStarting
from tests.central.fake_view import make_device

from .test_store import summary, velocity


def health(deployment: str, maps_stored: int) -> str:
    return Health(
        status="ok",
        deployment=deployment,
        model="epic",
        model_hash="530d0a14c3b92b14",
        broker_connected=True,
        buffer_depth=0,
        decode_queue_depth=0,
        decode_ms_p50=4.0,
        decode_ms_p95=6.0,
        maps_stored=maps_stored,
        uptime_s=1.0,
    ).model_dump_json()


async def centre(location: str, deployment: str) -> MapStore:
    """What a centre writes: a map, its devices, its health."""
    store = MapStore(location, deployment)
    await store.open()
    await store.save(summary("s0", deployment=deployment), velocity(0))
    shown = {d: make_device(d).model_dump_json() for d in ("dev-0", "dev-1")}
    await store.save_devices({d: {"latents_received": 1} for d in shown}, shown)
    await store.save_health(health(deployment, 1))
    return store


async def next_event(events: AsyncIterator[dict], within_s: float = 5.0) -> dict:
    async with asyncio.timeout(within_s):
        return await anext(events)


def test_every_deployment_is_served_with_its_own_maps_devices_and_events(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        north, south = await centre(location, "north"), await centre(location, "south")
        served = StoredDeployments(location)
        await served.start()
        try:
            assert served.names() == ["north", "south"]
            with pytest.raises(UnknownDeployment, match="2 deployments"):
                served.default()
            with pytest.raises(UnknownDeployment, match="no deployment 'east'"):
                served.view("east")
            view = served.view("north")
            assert (await view.latest_map()).deployment == "north"
            assert [d.id for d in view.devices()] == ["dev-0", "dev-1"]
            assert view.health().deployment == "north" and view.health().reported_ns
            [line] = [s for s in await served.summaries() if s.deployment == "south"]
            assert (line.status, line.maps_stored, line.devices_online) == ("ok", 1, 2)
            assert line.latest_sample_id == "s0"

            async with contextlib.AsyncExitStack() as stack:
                n_events = await stack.enter_async_context(view.subscribe())
                s_events = await stack.enter_async_context(served.view("south").subscribe())
                await north.save(summary("s1", deployment="north"), velocity(1))
                event = await next_event(n_events)
                assert (event["type"], event["map"]["sample_id"]) == ("map", "s1")
                gone = make_device("dev-1", online=False).model_dump_json()
                await north.save_devices({"dev-1": {}}, {"dev-1": gone})
                event = await next_event(n_events)
                assert event["type"] == "device" and event["device"]["status"] == "offline"
                with pytest.raises(TimeoutError):  # south heard nothing of north's news
                    await next_event(s_events, within_s=1.0)

            east = await centre(location, "east")  # a centre started after the API
            for _ in range(100):
                if "east" in served.names():
                    break
                await asyncio.sleep(0.1)
            assert served.names() == ["east", "north", "south"]

            monkeypatch.setattr(stored_view, "STALE_S", 0.0)  # its centre went silent
            await served.refresh()
            assert served.view("north").health().status == "degraded"
            assert {s.status for s in await served.summaries()} == {"stale"}
            for store in (north, south, east):
                await store.close()
        finally:
            await served.stop()

    asyncio.run(main())


def test_a_deployment_whose_centre_has_not_reported_reads_as_starting(location: str) -> None:
    async def main() -> None:
        store = MapStore(location, "west")
        await store.open()
        await store.save(summary("s0", deployment="west"), velocity(0))
        served = StoredDeployments(location, only=["west"])
        await served.start()
        try:
            view = served.default()  # the only one
            with pytest.raises(ServiceStarting):
                view.health()
            [line] = await served.summaries()
            assert (line.status, line.maps_stored) == ("starting", 1)
        finally:
            await served.stop()
            await store.close()

    asyncio.run(main())
