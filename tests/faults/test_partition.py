"""One edge cut off from the broker for a while (scaled from the issue's 60 s to 10 s to keep
CI short; the refine window, 60 s, covers both), then back: its latents wait in its outbox,
arrive late and are counted late; the samples of the outage decode partial at their
deadline, naming it, and are refined to complete maps (version 2) when its latents come in.
Its Last Will marks it offline meanwhile. Nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from epic.central.service import CentralService
from tests.support.brokers import BrokerProcess

from .conftest import edge_config, edges_running, finished, maps_for, sample_ids, start_slot
from .partition import Partition

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SHOTS = 28  # 14 s of stream at 2 shots/s
PARTITION_S = 10.0
CUT = "dev-3"


def test_a_partitioned_edge_comes_back_late_and_its_samples_are_refined(
    embedded_broker: BrokerProcess,
    bundle: Path,
    settings_for: Callable,
    pool_cache: Path,
    tmp_path: Path,
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, deadline_ms=1000)
        async with (
            CentralService(settings) as svc,
            Partition(embedded_broker.host, embedded_broker.port) as link,
        ):
            await svc.wait_connected()
            first = start_slot()
            ids = sample_ids(first, SHOTS)
            configs = [
                edge_config(
                    bundle,
                    link.url if d == CUT else embedded_broker.url,
                    d,
                    first,
                    SHOTS,
                    tmp_path,
                    pool_cache,
                )
                for d in svc.manifest.device_ids
            ]
            async with edges_running(configs) as daemons:
                async with asyncio.timeout(20):
                    while svc.pipeline.maps_decoded < 2:
                        await asyncio.sleep(0.05)
                link.cut()
                async with asyncio.timeout(10):  # the broker speaks its Last Will
                    while svc.registry.health(CUT).status != "offline":
                        await asyncio.sleep(0.05)
                await asyncio.sleep(PARTITION_S)
                cut_edge = next(d for d in daemons if d.config.device_id == CUT)
                waiting = cut_edge.outbox.depth
                link.heal()
                async with asyncio.timeout(20):  # back, and it says so
                    while svc.registry.health(CUT).status != "online":
                        await asyncio.sleep(0.05)
                await finished(daemons, timeout=60)
            maps = await maps_for(svc, ids, timeout=30)  # the newest version of each
            health = svc.registry.health(CUT)
        assert waiting >= PARTITION_S * 2 - 2 and link.refused > 0
        outage = [sid for sid, m in maps.items() if m.version > 1]
        assert len(outage) >= waiting - 2  # each held-back latent refined its sample ...
        for sid in outage:
            v1 = await svc_map(settings, sid)
            assert v1.partial and v1.devices_missing == [CUT]  # ... decoded without it first
        assert all(not m.partial and m.version in (1, 2) for m in maps.values())
        assert health.late_latents >= len(outage)
        assert health.rejected == {} and cut_edge.outbox.dropped == 0

    asyncio.run(main())


async def svc_map(settings: object, sample: str) -> object:
    from epic.central.store import MapStore

    store = MapStore(settings.db, "demo")  # type: ignore[attr-defined]
    await store.open()
    try:
        return await store.get(sample, 1)
    finally:
        await store.close()
