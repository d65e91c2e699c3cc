"""An edge whose bundle was replaced by another model's: its latents are refused by the model
hash (``foreign-model``), the device shows why in ``/api/devices`` and on the monitor page
(the rejected column's tooltip), and the maps carry on without it, naming it missing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import torch

from epic.central.service import CentralService
from epic.shared.bundle import load_manifest, write_bundle
from epic.shared.models.checkpoint import save_checkpoint
from epic.shared.models.registry import build_model
from tests.central.test_page import CHROMIUM, CHROMIUM_ARGS
from tests.support.brokers import BrokerProcess

from .conftest import edge_config, edges_running, finished, maps_for, sample_ids, start_slot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SHOTS = 6
STRANGER = "dev-2"


@pytest.fixture(scope="module")
def foreign_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same deployment, devices and shapes; other weights (an untrained model), other hash."""
    folder = tmp_path_factory.mktemp("foreign")
    torch.manual_seed(1)
    save_checkpoint(folder / "other.pt", build_model("epic", "lite", 5), purpose="test")
    write_bundle(folder / "other.pt", folder / "bundle", "demo")
    return folder / "bundle"


def test_an_edge_with_another_models_bundle_is_refused_and_shown_why(
    embedded_broker: BrokerProcess,
    bundle: Path,
    foreign_bundle: Path,
    settings_for: Callable,
    pool_cache: Path,
    tmp_path: Path,
) -> None:
    ours, theirs = load_manifest(bundle).model_hash, load_manifest(foreign_bundle).model_hash
    assert ours != theirs

    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, deadline_ms=800)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            first = start_slot()
            ids = sample_ids(first, SHOTS)
            configs = [
                edge_config(
                    foreign_bundle if d == STRANGER else bundle,
                    embedded_broker.url,
                    d,
                    first,
                    SHOTS,
                    tmp_path,
                    pool_cache,
                )
                for d in svc.manifest.device_ids
            ]
            async with edges_running(configs) as daemons:
                await finished(daemons, timeout=60)
            maps = await maps_for(svc, ids, timeout=20, complete=False)
            async with httpx.AsyncClient(base_url=svc.http.url, timeout=10) as http:
                devices = {d["id"]: d for d in (await http.get("/api/devices")).json()["devices"]}
            tooltip = await rejected_tooltip(svc.http.url, STRANGER)
        stranger = devices[STRANGER]
        assert stranger["rejected"] == {"foreign-model": SHOTS}
        assert stranger["latents_received"] == 0 and stranger["bundle_hash"] == theirs
        assert all(
            d["rejected"] == {} and d["bundle_hash"] == ours
            for i, d in devices.items()
            if i != STRANGER
        )
        assert all(m.partial and m.devices_missing == [STRANGER] for m in maps.values())
        assert tooltip == f"foreign-model: {SHOTS}"

    asyncio.run(main())


async def rejected_tooltip(url: str, device: str) -> str | None:
    """What the monitor page shows when one hovers the device's rejected count."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (the system-deps step installs it)")
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            cell = page.locator(f'#device-table tbody tr[data-device="{device}"] td').nth(7)
            await expect(cell).to_have_text(str(SHOTS), timeout=15_000)
            return await cell.get_attribute("title")
        finally:
            await browser.close()
