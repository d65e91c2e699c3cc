"""The live monitor against the real centre: the embedded broker, ``CentralService`` with the
shipped model's bundle, and real envelopes, status and heartbeats from five edges published
over MQTT. The page must show what the service decoded."""

from __future__ import annotations

import asyncio
import io
import shutil
import time
from pathlib import Path

import aiomqtt
import httpx
import numpy as np
import pytest

from epic.central.service import CentralService
from epic.central.settings import CentralSettings
from epic.edge.health import (
    EdgeStats,
    StatusInfo,
    encode_heartbeat,
    heartbeat_figures,
    status_payload,
)
from tests.central.service import conftest as service_fixtures
from tests.central.service.conftest import Feed
from tests.central.test_page import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.support.brokers import BrokerProcess

# The service tests' fixtures (the shipped model's bundle, real latents), shared rather than
# re-made: fixtures of a conftest one folder down are not visible here otherwise.
bundle = service_fixtures.bundle
pool = service_fixtures.pool
feed = service_fixtures.feed

pytestmark = pytest.mark.slow

WAIT_MS = 20_000
DEADLINE_MS = 1500.0


def _status(feed: Feed, device: str, online: bool) -> tuple[str, bytes]:
    entry = feed.manifest.device(device)
    info = StatusInfo(
        deployment=feed.deployment,
        device_id=device,
        bundle_hash=feed.manifest.model_hash,
        software="test",
        receivers=(entry.receivers[0], entry.receivers[-1]),
        mode="latent",
        runtime="torch",
        since_ns=time.time_ns(),
        source={"kind": "sim"},
    )
    payload = status_payload(info, online, None if online else "lost")
    return f"epic/{feed.deployment}/status/{device}", payload


def _heartbeat(feed: Feed, device: str) -> tuple[str, bytes]:
    stats = EdgeStats(samples_encoded=2, envelopes_sent=2, bytes_sent=1200)
    stats.encode_ms.extend([6.0, 8.0, 10.0])
    figures = heartbeat_figures(device, stats, outbox_depth=0, outbox_bytes=0, dropped=0, skipped=0)
    payload = encode_heartbeat(figures)
    return f"epic/{feed.deployment}/heartbeat/{device}", payload


async def _scenario(broker: BrokerProcess, bundle: Path, feed: Feed, tmp_path: Path) -> Path:
    from playwright.async_api import async_playwright, expect

    settings = CentralSettings(
        bundle=bundle,
        broker=broker.url,
        port=0,
        db=tmp_path / "centre.sqlite",
        deadline_ms=DEADLINE_MS,
        threads=1,
    )
    devices = feed.devices
    async with (
        CentralService(settings) as service,
        aiomqtt.Client(broker.host, broker.port, identifier="test-edges") as edges,
        async_playwright() as p,
    ):
        await service.wait_connected()
        for device in devices:
            await edges.publish(*_status(feed, device, True), qos=1, retain=True)
            await edges.publish(*_heartbeat(feed, device), qos=1)
        for device in devices:
            await edges.publish(*feed.message(0, device), qos=1)

        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1366, "height": 900})
        await page.goto(service.http.url)
        await expect(page.locator("#conn-state")).to_have_attribute(
            "data-state", "live", timeout=WAIT_MS
        )
        await expect(page.locator("#sample-id")).to_have_text(feed.sample_id(0), timeout=WAIT_MS)
        await page.wait_for_function(
            "() => { const i = document.querySelector('#latest-map');"
            " return i && !i.hidden && i.complete && i.naturalWidth > 0 }",
            timeout=WAIT_MS,
        )
        await expect(page.locator("#map-partial")).to_have_text("complete")
        await expect(page.locator("#device-table tbody tr")).to_have_count(len(devices))
        await expect(page.locator("#device-table tbody tr.bad")).to_have_count(0)
        first_row = page.locator(f'#device-table tbody tr[data-device="{devices[0]}"]')
        await expect(first_row.locator("td").nth(5)).to_have_text("8.0 / 9.8", timeout=WAIT_MS)

        # The last device falls silent (its Last Will says so): the next sample decodes at
        # the deadline without it, and its row turns red.
        silent = devices[-1]
        await edges.publish(*_status(feed, silent, False), qos=1, retain=True)
        for device in devices[:-1]:
            await edges.publish(*feed.message(1, device), qos=1)
        await edges.publish(
            f"epic/{feed.deployment}/latent/{feed.sample_id(2)}/{devices[1]}",
            b"not an envelope",
            qos=1,
        )
        await expect(page.locator("#sample-id")).to_have_text(feed.sample_id(1), timeout=WAIT_MS)
        await expect(page.locator("#map-partial")).to_have_text("PARTIAL")
        await expect(page.locator("#devices-missing")).to_have_text(silent)
        row = page.locator(f'#device-table tbody tr[data-device="{silent}"]')
        await expect(row).to_have_class("bad", timeout=WAIT_MS)
        rejected = page.locator(f'#device-table tbody tr[data-device="{devices[1]}"] td').nth(7)
        await expect(rejected).to_have_text("1", timeout=WAIT_MS)
        await page.wait_for_function(
            "v => document.querySelector('#latest-map').dataset.version === v"
            " && document.querySelector('#latest-map').naturalWidth > 0",
            arg="1",
            timeout=WAIT_MS,
        )
        await expect(page.locator("#recent-maps li")).to_have_count(2)
        shot = tmp_path / "monitor-service.png"
        await page.screenshot(path=str(shot), full_page=True)
        await browser.close()
        await _check_rest(service.http.url, feed.sample_id(1), silent)
        return shot


async def _check_rest(base: str, sample: str, missing: str) -> None:
    """What the page showed, as tools read it."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        latest = (await http.get("/api/maps/latest")).json()
        assert (latest["sample_id"], latest["devices_missing"]) == (sample, [missing])
        npy = await http.get(f"/api/maps/{sample}", params={"format": "npy"})
        array = np.load(io.BytesIO(npy.content), allow_pickle=False)
        np.testing.assert_allclose(array, np.array(latest["velocity"], np.float32))
        assert 1400 < array.min() <= array.max() < 4600
        listed = (await http.get("/api/maps", params={"limit": 1})).json()["maps"]
        assert [m["sample_id"] for m in listed] == [sample]
        metrics = await http.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "epic_" in metrics.text


def test_monitor_shows_what_the_real_service_decodes(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (the system-deps step installs it)")

    async def bounded() -> Path:
        async with asyncio.timeout(120):
            return await _scenario(embedded_broker, bundle, feed, tmp_path)

    shot = asyncio.run(bounded())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / "monitor-service.png")
