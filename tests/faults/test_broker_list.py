"""``--broker`` as a list of a cluster's nodes: the centre and the edges try them in turn, so
a node that is down at start (here: a port nobody listens on, first in every list) costs a
reconnect, not the stream. Every sample ends as a complete map."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from epic.central.service import CentralService
from epic.shared.launcher import free_port
from tests.support.brokers import BrokerProcess

from .conftest import edge_config, edges_running, finished, maps_for, sample_ids, start_slot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SHOTS = 6


def test_the_centre_and_the_edges_move_past_a_node_that_is_down(
    embedded_broker: BrokerProcess,
    bundle: Path,
    settings_for: Callable,
    pool_cache: Path,
    tmp_path: Path,
) -> None:
    down = f"mqtt://127.0.0.1:{free_port()}"
    nodes = f"{down},{embedded_broker.url}"

    async def main() -> None:
        async with CentralService(settings_for(bundle, nodes)) as svc:
            await svc.wait_connected(20)
            assert svc.consumer.address.port == embedded_broker.port
            first = start_slot(1.5)
            ids = sample_ids(first, SHOTS)
            configs = [
                edge_config(bundle, nodes, d, first, SHOTS, tmp_path, pool_cache)
                for d in svc.manifest.device_ids
            ]
            async with edges_running(configs) as daemons:
                await finished(daemons, timeout=60)
                failures = [d.stats.connect_failures for d in daemons]
            maps = await maps_for(svc, ids, timeout=30)
        assert sorted(maps) == sorted(ids) and all(not m.partial for m in maps.values())
        assert all(f >= 1 for f in failures)  # each tried the node that is down first

    asyncio.run(main())
