"""Bounds a hostile or broken client cannot push the centre past, each checked through a real
running part: the envelope size (``--max-envelope-bytes``, checked before anything is
parsed), the database size (``--retention`` maps), and live WebSocket clients
(``--max-live-clients``; one more is closed with 1013, "try again later").

Bounds with tests elsewhere: the assembler's buffer (``max_open_samples``, evicting the
oldest: tests/central/service/test_service_e2e.py), each live client's event queue (1013
when it falls behind: tests/central/test_api.py), the store's in-memory fallback
(tests/faults/test_store_failure.py), the edge outbox (tests/edge/test_outbox.py) and the
broker's queue for an offline session (tests/faults/test_broker_sessions.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from epic.central.api import create_app
from epic.central.service import CentralService
from tests.central.fake_view import DEVICE_IDS, FakeView, make_device
from tests.central.service.conftest import Feed, publish
from tests.central.test_page import serve
from tests.support.brokers import BrokerProcess


@pytest.mark.slow
def test_envelope_size_and_retention_bounds_hold_in_a_running_centre(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    good = feed.payload(0, "dev-0")
    settings = settings_for(
        bundle, embedded_broker.url, max_envelope_bytes=len(good), retention=3, deadline_ms=600
    )

    async def main() -> None:
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            # One byte over the bound is refused unread; exactly at the bound is fine.
            await publish(embedded_broker.url, [(feed.topic(0, "dev-0"), good + b"\0")])
            await publish(
                embedded_broker.url, [feed.message(k, d) for k in range(6) for d in feed.devices]
            )
            async with asyncio.timeout(30):
                while svc.pipeline.maps_decoded < 6:
                    await asyncio.sleep(0.05)
            assert svc.health().rejected == {"oversize": 1}
            assert svc.store.count == 3  # the database keeps the newest 3
            kept = [k for k in range(6) if await svc.get_map(feed.sample_id(k)) is not None]
            assert kept == [3, 4, 5]

    asyncio.run(main())


def test_live_clients_beyond_the_bound_are_closed_1013_and_admitted_when_one_leaves() -> None:
    view = FakeView()
    view.set_device(make_device(DEVICE_IDS[0]))
    server = serve(create_app(view, max_live_clients=2))
    url = next(server).replace("http://", "ws://") + "/ws/live"
    try:
        first, second = connect(url, open_timeout=5), connect(url, open_timeout=5)
        for client in (first, second):
            assert json.loads(client.recv(timeout=5))["type"] == "device"  # its snapshot
        with connect(url, open_timeout=5) as third, pytest.raises(ConnectionClosed) as closed:
            third.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "too many live clients" in closed.value.rcvd.reason
        first.close()
        for _ in range(50):  # the server notices the departure
            with connect(url, open_timeout=5) as fourth:
                try:
                    assert json.loads(fourth.recv(timeout=5))["type"] == "device"
                    break
                except ConnectionClosed:
                    pass
        else:
            pytest.fail("no room for a new client after one left")
        second.close()
    finally:
        server.close()
