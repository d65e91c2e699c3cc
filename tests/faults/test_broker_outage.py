"""The broker killed (SIGKILL) and restarted mid-stream: five real edges keep producing into
their outboxes, the centre reconnects, and every sample produced meanwhile becomes a map
with every device in it (refined where a device's latents came in after the deadline).

The edges reconnect within a second of the restart and empty their outboxes; the centre's
backoff has grown to several seconds by then. What they publish in between reaches the
centre only because the broker remembers its persistent session (``epic broker --state``,
here through ``EPIC_BROKER_STATE``): without it this test lost 14 of 16 samples."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from epic.central.service import CentralService
from tests.support.brokers import BrokerProcess

from .conftest import edge_config, edges_running, finished, maps_for, sample_ids, start_slot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SHOTS = 16  # 8 s of stream at 2 shots/s
OUTAGE_S = 3.0


def test_every_sample_produced_during_a_broker_outage_becomes_a_map(
    embedded_broker_factory: Callable[..., BrokerProcess],
    bundle: Path,
    settings_for: Callable,
    pool_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EPIC_BROKER_STATE", str(tmp_path / "broker-state.json"))
    embedded_broker = embedded_broker_factory()

    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, deadline_ms=1500)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            first = start_slot()
            ids = sample_ids(first, SHOTS)
            configs = [
                edge_config(bundle, embedded_broker.url, d, first, SHOTS, tmp_path, pool_cache)
                for d in svc.manifest.device_ids
            ]
            async with edges_running(configs) as daemons:
                async with asyncio.timeout(20):
                    while svc.pipeline.maps_decoded < 2:  # the stream is flowing
                        await asyncio.sleep(0.05)
                await asyncio.to_thread(embedded_broker.stop, kill=True)
                down_at = svc.pipeline.maps_decoded
                await asyncio.sleep(OUTAGE_S)
                queued = sum(d.outbox.depth for d in daemons)
                await asyncio.to_thread(embedded_broker.start)
                await finished(daemons, timeout=60)
            maps = await maps_for(svc, ids, timeout=30)
            assert queued > 0  # the edges really did keep samples through the outage
            assert svc.consumer.reconnects >= 1
            assert all(d.outbox.dropped == 0 and d.stats.samples_encoded == SHOTS for d in daemons)
            assert set(maps) == set(ids) and down_at < SHOTS
            health = svc.health()
            assert health.rejected == {} and health.samples_dropped == {}

    asyncio.run(main())
