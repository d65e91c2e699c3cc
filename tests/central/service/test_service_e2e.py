"""The whole centre against a real broker (``epic broker`` in a subprocess): real envelopes
from the edges' encoders in, maps out over MQTT, the store (a SQLite file, and a real
PostgreSQL server where a test takes ``location``), the live feed and REST."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from epic.central.service import CentralService
from tests.support.brokers import BrokerProcess
from tests.support.mqtt import collect

from .conftest import Feed, client, publish

# A backstop: every wait below has its own timeout, so none should come near this.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def maps_from(events: AsyncIterator[dict], n: int, timeout: float = 20.0) -> list[dict]:
    """The next ``n`` map events of the live feed."""
    got: list[dict] = []
    async with asyncio.timeout(timeout):
        async for event in events:
            if event["type"] == "map":
                got.append(event["map"])
                if len(got) == n:
                    return got
    raise AssertionError(f"the live feed ended after {len(got)} maps")


def status(feed: Feed, device: str, online: bool) -> tuple[str, bytes]:
    body = {"online": online, "bundle_hash": feed.manifest.model_hash, "software": "test"}
    return f"epic/{feed.deployment}/status/{device}", json.dumps(body).encode()


def test_twenty_samples_from_five_devices_give_twenty_complete_maps(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable, location: str
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, db=location)
        async with CentralService(settings, truth=feed.pool.truth_for) as svc:
            await svc.wait_connected()
            async with client(embedded_broker.url, "test-map-reader") as reader:
                await reader.subscribe(f"epic/{feed.deployment}/map/+", qos=1)
                async with svc.subscribe() as events:
                    statuses = [status(feed, d, True) for d in feed.devices]
                    await publish(embedded_broker.url, statuses, retain=True)
                    messages = [feed.message(k, d) for k in range(20) for d in feed.devices]
                    await publish(embedded_broker.url, messages)
                    maps = await maps_from(events, 20)
                published = await collect(reader, 20, timeout=10)
            assert sorted(m["sample_id"] for m in maps) == sorted(
                feed.sample_id(k) for k in range(20)
            )
            assert not any(m["partial"] for m in maps)
            assert all(m["devices_used"] == feed.devices and m["version"] == 1 for m in maps)
            assert all(0 < m["ssim"] <= 1 for m in maps)  # scored against the pool's truth
            on_mqtt = {m.topic.value.rsplit("/", 1)[1]: json.loads(m.payload) for m in published}
            assert set(on_mqtt) == {m["sample_id"] for m in maps}
            assert on_mqtt[feed.sample_id(7)]["devices_missing"] == []
            health = svc.health()
            assert health.maps_stored == 20 and health.maps_decoded == 20
            assert health.broker_connected and health.status == "ok" and health.rejected == {}
            await check_rest(svc, feed)

    asyncio.run(main())


async def check_rest(svc: CentralService, feed: Feed) -> None:
    async with httpx.AsyncClient(base_url=svc.http.url, timeout=10) as http:
        latest = (await http.get("/api/maps/latest")).json()
        assert len(latest["velocity"]) == 70 and len(latest["velocity"][0]) == 70
        assert 1400 < np.mean(latest["velocity"]) < 4600
        one = (await http.get(f"/api/maps/{feed.sample_id(3)}")).json()
        stored = await svc.get_map(feed.sample_id(3))
        assert one["velocity"] == stored.velocity and one["devices_used"] == feed.devices
        page = (await http.get("/api/maps", params={"limit": 5})).json()["maps"]
        assert len(page) == 5
        before = page[-1]["sample_id"]
        rest = (await http.get("/api/maps", params={"limit": 50, "before": before})).json()["maps"]
        assert len(rest) == 15 and not {m["sample_id"] for m in rest} & {
            m["sample_id"] for m in page
        }
        assert (await http.get("/api/maps/no-such-sample")).status_code == 404
        devices = (await http.get("/api/devices")).json()["devices"]
        assert [d["id"] for d in devices] == feed.devices
        assert all(d["online"] and d["status"] == "online" for d in devices)
        assert all(d["latents_received"] == 20 and d["arrival_delay_ms_p95"] > 0 for d in devices)
        health = (await http.get("/api/health")).json()
        assert health["maps_stored"] == 20 and health["deadline_ms"] == 1500
        metrics = (await http.get("/metrics")).text
        assert 'epic_central_maps_total{partial="false",refined="false"} 20.0' in metrics
        assert 'epic_central_messages_total{kind="latent"} 100.0' in metrics


def test_silent_device_partial_maps_then_late_refinements_and_duplicates(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, deadline_ms=600)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            async with svc.subscribe() as events:
                four = [d for d in feed.devices if d != "dev-3"]
                await publish(
                    embedded_broker.url, [feed.message(k, d) for k in range(3) for d in four]
                )
                partial = await maps_from(events, 3, timeout=10)
                for m in partial:
                    assert m["partial"] and m["devices_missing"] == ["dev-3"]
                    waited_ms = (
                        m["timings"]["decode_start_ns"] - m["timings"]["first_arrival_ns"]
                    ) / 1e6
                    assert waited_ms >= svc.assembler.budget_ms * 0.9  # held to the deadline
                # dev-3 comes in late for one sample; dev-0 repeats itself on another.
                await publish(
                    embedded_broker.url, [feed.message(1, "dev-3"), feed.message(2, "dev-0")]
                )
                [refined] = await maps_from(events, 1, timeout=10)
            assert refined["sample_id"] == feed.sample_id(1) and refined["version"] == 2
            assert not refined["partial"] and refined["devices_used"] == feed.devices
            dev3, dev0 = svc.registry.health("dev-3"), svc.registry.health("dev-0")
            assert dev3.late_latents == 1 and dev0.duplicates == 1
            assert (await svc.get_map(feed.sample_id(1), 1)).partial  # version 1 kept
            listed = await svc.list_maps(10)
            assert [(m.sample_id, m.version) for m in listed][1] == (feed.sample_id(1), 2)

    asyncio.run(main())


def test_too_few_devices_are_dropped_at_the_deadline(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, deadline_ms=300, min_devices=4)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            await publish(embedded_broker.url, [feed.message(0, d) for d in feed.devices[:3]])
            async with asyncio.timeout(10):
                while svc.health().samples_dropped != {"too-few-devices": 1}:
                    await asyncio.sleep(0.05)
            assert svc.health().maps_stored == 0

    asyncio.run(main())


def _garbage(feed: Feed) -> list[tuple[str, bytes, str]]:
    """(topic, payload, the reason it must be counted under), one of every kind."""
    good = feed.payload(5, "dev-1")
    flipped = bytearray(good)
    flipped[30] ^= 1
    from .test_validate import _nan_float32

    t = feed.topic
    return [
        (
            t(5, "dev-1"),
            bytes(np.random.default_rng(0).integers(0, 256, 500, np.uint8)),
            "bad-magic",
        ),
        (t(5, "dev-1"), good[: len(good) // 2], "crc"),
        (t(5, "dev-1"), bytes(flipped), "crc"),
        (t(5, "dev-1"), feed.payload(5, "dev-1", deployment="elsewhere"), "wrong-deployment"),
        (t(5, "dev-1"), feed.payload(5, "dev-1", model_hash="00000000deadbeef"), "foreign-model"),
        (t(5, "dev-1"), feed.payload(5, "dev-1", data=np.zeros((4, 64), np.float32)), "bad-shape"),
        (t(5, "dev-1"), _nan_float32(feed), "non-finite"),
        (t(5, "dev-1"), good + bytes(5000), "oversize"),
        (f"epic/{feed.deployment}/latent/{feed.sample_id(5)}/dev$1", good, "bad-id"),
        (t(5, "dev-9"), feed.payload(5, "dev-1", device_id="dev-9"), "unknown-device"),
        (f"epic/{feed.deployment}/status/dev-2", b"{online: yes", "bad-status"),
        (f"epic/{feed.deployment}/heartbeat/dev-2", b"\x00\x01", "bad-heartbeat"),
        (t(5, "dev-1", kind="raw"), good, "raw-unsupported"),
    ]


def test_garbage_of_every_kind_is_counted_and_the_service_stays_up(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, max_envelope_bytes=4096)
        garbage = _garbage(feed)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            async with svc.subscribe() as events:
                await publish(embedded_broker.url, [(t, p) for t, p, _ in garbage])
                await publish(embedded_broker.url, [feed.message(5, d) for d in feed.devices])
                [m] = await maps_from(events, 1)
            assert m["sample_id"] == feed.sample_id(5) and not m["partial"]
            expected: dict[str, int] = {}
            for _, _, reason in garbage:
                expected[reason] = expected.get(reason, 0) + 1
            async with asyncio.timeout(5):  # the status/heartbeat ones take their own path
                while svc.health().rejected != expected:
                    await asyncio.sleep(0.05)
            assert svc.registry.health("dev-1").rejected["crc"] == 2
            assert svc.registry.health("dev-9").rejected == {"unknown-device": 1}
            assert svc.registry.health("dev-2").rejected == {"bad-status": 1, "bad-heartbeat": 1}
            text = (await _get(svc, "/metrics")).text
            assert 'epic_central_rejected_total{device="dev-1",reason="foreign-model"} 1.0' in text
            assert 'epic_central_rejected_total{device="?",reason="bad-id"} 1.0' in text

    asyncio.run(main())


async def _get(svc: CentralService, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=svc.http.url, timeout=10) as http:
        return await http.get(path)


def test_restart_keeps_history_and_gets_what_the_broker_queued_meanwhile(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable, location: str
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, db=location)
        async with CentralService(settings) as svc, svc.subscribe() as events:
            await svc.wait_connected()
            await publish(
                embedded_broker.url, [feed.message(k, d) for k in (0, 1) for d in feed.devices]
            )
            await maps_from(events, 2)
        # The centre is down: its persistent session queues these at the broker.
        await publish(embedded_broker.url, [feed.message(2, d) for d in feed.devices])
        async with CentralService(settings) as svc, svc.subscribe() as events:
            [m] = await maps_from(events, 1)
            assert m["sample_id"] == feed.sample_id(2)
            assert [s.sample_id for s in await svc.list_maps(10)] == [
                feed.sample_id(k) for k in (2, 1, 0)
            ]
            assert svc.registry.health("dev-0").latents_received == 3  # 2 before, 1 now
            # A straggler for a sample decoded before the restart is late, not a new map.
            await publish(embedded_broker.url, [feed.message(0, "dev-0")])
            async with asyncio.timeout(5):
                while svc.registry.health("dev-0").late_latents == 0:
                    await asyncio.sleep(0.05)
            assert svc.health().maps_stored == 3

    asyncio.run(main())


def test_centralized_baseline_decodes_raw_blocks(
    embedded_broker: BrokerProcess, raw_bundle: Path, raw_feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        settings = settings_for(raw_bundle, embedded_broker.url)
        raw = [
            (
                raw_feed.topic(k, d, kind="raw"),
                raw_feed.payload(k, d, "float32", data=raw_feed.blocks[d][k]),
            )
            for k in range(2)
            for d in raw_feed.devices
        ]
        async with CentralService(settings, truth=raw_feed.pool.truth_for) as svc:
            await svc.wait_connected()
            async with svc.subscribe() as events:
                await publish(embedded_broker.url, raw)
                maps = await maps_from(events, 2)
        assert all(not m["partial"] and m["ssim"] > 0 for m in maps)

    asyncio.run(main())


def test_a_slow_decode_never_stops_the_consumer(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, max_open_samples=4)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            gate = threading.Event()
            decode = svc.decoder.runtime.decode

            def stuck(batch: list) -> list:
                gate.wait(20)  # the decoder thread is busy (a slow CPU, a big batch)
                return decode(batch)

            svc.decoder.runtime.decode = stuck  # type: ignore[method-assign]
            async with svc.subscribe() as events:
                await publish(embedded_broker.url, [feed.message(0, d) for d in feed.devices])
                async with asyncio.timeout(5):
                    while svc.decoder.in_flight == 0:
                        await asyncio.sleep(0.01)
                started = time.monotonic()
                messages = [feed.message(k, d) for k in range(1, 11) for d in feed.devices]
                await publish(embedded_broker.url, messages)
                async with asyncio.timeout(10):  # all read while the decoder is stuck
                    while sum(d.latents_received for d in svc.devices()) < 55:
                        await asyncio.sleep(0.01)
                assert svc.decoder.in_flight == 1 and time.monotonic() - started < 10
                assert svc.assembler.depth == 4  # bounded: the 6 oldest were evicted
                assert svc.health().samples_dropped == {"evicted": 6}
                gate.set()
                maps = await maps_from(events, 5)
            assert [m["sample_id"] for m in maps] == [feed.sample_id(k) for k in (0, 7, 8, 9, 10)]

    asyncio.run(main())


def test_reconnects_after_the_broker_restarts(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        async with CentralService(settings_for(bundle, embedded_broker.url)) as svc:
            await svc.wait_connected()
            await asyncio.to_thread(embedded_broker.stop, kill=True)  # an outage, no goodbye
            async with asyncio.timeout(10):
                while svc.health().broker_connected:
                    await asyncio.sleep(0.05)
            assert svc.health().status == "degraded"
            await asyncio.to_thread(embedded_broker.start)
            await svc.wait_connected(timeout=20)  # backoff: 0.5, 1, 2 ... s
            async with svc.subscribe() as events:
                await publish(embedded_broker.url, [feed.message(0, d) for d in feed.devices])
                [m] = await maps_from(events, 1)
            assert m["sample_id"] == feed.sample_id(0) and svc.consumer.reconnects == 1

    asyncio.run(main())
