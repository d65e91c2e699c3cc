"""Many deployments, one view: three deployments, each with its own ``epic central`` and
five devices, stream into one PostgreSQL; two stateless ``epic api`` processes serve all
three, agree on every map, push each deployment's live events (LISTEN/NOTIFY) only to its
own clients, and the monitor, in Chromium, shows each one through its picker.

Real processes and servers: the embedded broker, three centres, two API processes, a
PostgreSQL server, Chromium. The devices are MQTT clients publishing real envelopes of the
shipped model's latents (``Feed``): fifteen full edges would not fit two cores beside the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from pathlib import Path

import aiomqtt
import pytest
import websockets

from epic.shared.bundle import write_bundle
from epic.shared.manifest import load_manifest
from tests.central.service.conftest import ROOT, Feed
from tests.central.test_page import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS
from tests.support.brokers import BrokerProcess

from .api_process import ApiProcess
from .central_process import CentralProcess
from .test_centre_crash import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DEPLOYMENTS = ["north", "south", "east"]
SAMPLES = 6  # per deployment
RATE_HZ = 4.0


def slots(k: int) -> range:
    """Each deployment's own sample ids, so that the monitor shows which one it is."""
    return range(100 * k, 100 * k + SAMPLES)


async def stream(broker: BrokerProcess, feed: Feed, k: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        devices = [
            await stack.enter_async_context(
                aiomqtt.Client(broker.host, broker.port, identifier=f"{feed.deployment}-{d}")
            )
            for d in feed.devices
        ]
        for slot in slots(k):
            for device, name in zip(devices, feed.devices, strict=True):
                await device.publish(*feed.message(slot, name), qos=1)
            await asyncio.sleep(1 / RATE_HZ)


async def complete_maps(api: ApiProcess, deployment: str) -> dict[str, dict]:
    listed = await api.get(f"/api/deployments/{deployment}/maps", limit=500)
    return {m["sample_id"]: m for m in listed["maps"] if not m["partial"]}


def test_three_deployments_one_database_two_api_processes(
    embedded_broker: BrokerProcess,
    feed: Feed,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    feeds = {}
    centres = []
    for name in DEPLOYMENTS:
        bundle = tmp_path / "bundles" / name
        write_bundle(ROOT / "models" / "epic-lite-5.pt", bundle, name)
        feeds[name] = dataclasses.replace(feed, manifest=load_manifest(bundle))
        centres.append(
            CentralProcess(bundle, embedded_broker.url, tmp_path / name, db=postgres_url)
        )
    apis = [ApiProcess(postgres_url, tmp_path / f"api-{k}") for k in range(2)]
    expected = {
        name: sorted(feed.sample_id(s) for s in slots(k)) for k, name in enumerate(DEPLOYMENTS)
    }

    async def main() -> None:
        for centre in centres:
            await centre.start()
        for api in apis:
            await api.start()

        async def all_listed() -> bool:
            listed = await apis[1].get("/api/deployments")
            return sorted(d["deployment"] for d in listed["deployments"]) == sorted(DEPLOYMENTS)

        await wait_for(all_listed, 20, "every deployment listed")
        ws_url = apis[1].url.replace("http", "ws") + "/ws/deployments/south/live"
        async with websockets.connect(ws_url) as live:
            await asyncio.gather(
                *(stream(embedded_broker, feeds[n], k) for k, n in enumerate(DEPLOYMENTS))
            )

            async def every_map_everywhere() -> bool:
                for api in apis:
                    for name in DEPLOYMENTS:
                        if sorted(await complete_maps(api, name)) != expected[name]:
                            return False
                return True

            await wait_for(every_map_everywhere, 60, "every map through both API processes")
            heard: set[str] = set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    async for message in live:
                        event = json.loads(message)
                        if event["type"] == "map":
                            assert event["map"]["deployment"] == "south"
                            heard.add(event["map"]["sample_id"])
                        if heard >= set(expected["south"]):
                            break
            assert heard >= set(expected["south"])  # live, through NOTIFY, not by polling

        for name in DEPLOYMENTS:
            one, other = [await complete_maps(api, name) for api in apis]
            assert one == other  # stateless: both serve the same
            health = await apis[0].get(f"/api/deployments/{name}/health")
            assert health["deployment"] == name and health["status"] == "ok"
            devices = await apis[0].get(f"/api/deployments/{name}/devices")
            assert len(devices["devices"]) == 5

    try:
        asyncio.run(main())
        _the_monitor_shows_each(apis[0], expected)
    finally:
        for process in [*apis, *centres]:
            process.stop()
    for api in apis:
        assert "Traceback" not in api.logs(), api.logs()


def _the_monitor_shows_each(api: ApiProcess, expected: dict[str, list[str]]) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (the system-deps step installs it)")
    from playwright.sync_api import expect

    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1366, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.goto(api.url + "/")
            picker = page.locator("#deployment-picker")
            expect(picker).to_be_visible(timeout=15_000)
            for text in picker.locator("option").all_inner_texts():
                assert " · ok · " in text and "5/5 devices" in text, text
            values = page.eval_on_selector_all(
                "#deployment-picker option", "os => os.map(o => o.value)"
            )
            assert sorted(values) == sorted(expected)
            for name, samples in expected.items():
                picker.select_option(name)
                page.wait_for_url(f"**/?deployment={name}")
                expect(page.locator("#conn-state")).to_have_attribute(
                    "data-state", "live", timeout=15_000
                )
                expect(page.locator("#deployment")).to_contain_text(name, timeout=15_000)
                expect(page.locator("#sample-id")).to_have_text(samples[-1], timeout=15_000)
                expect(page.locator("#recent-maps li")).to_have_count(len(samples))
            # What docs/monitor-deployments.png shows (kept under runs/, never committed here)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "monitor-deployments.png"), full_page=True)
            assert problems == []
        finally:
            chromium.close()
