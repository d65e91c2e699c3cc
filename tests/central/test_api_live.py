"""The live feed over real sockets: a client that stops reading is dropped once its socket
stops taking data, so the server never buffers for it without bound."""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
from websockets.sync.client import connect

from epic.central import live_feed
from epic.central.api import create_app
from tests.central.fake_view import DEVICE_IDS, FakeView, make_device
from tests.central.test_page import serve


@pytest.mark.slow
def test_a_client_that_stops_reading_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_feed, "WS_SEND_TIMEOUT_S", 0.5)
    monkeypatch.setattr(live_feed, "WS_CLOSE_TIMEOUT_S", 0.5)
    # A queue far bigger than the test sends: only the stalled socket can end this feed.
    view = FakeView(queue_size=100_000)
    view.set_device(make_device(DEVICE_IDS[0]))
    server = serve(create_app(view))
    base = next(server)
    try:
        url = base.replace("http://", "ws://") + "/ws/live"
        # max_queue=1: the client's reader stops taking frames off the socket at once.
        with connect(url, max_queue=1, open_timeout=5, close_timeout=1):
            deadline = time.monotonic() + 5
            while view.subscriber_count < 1:
                assert time.monotonic() < deadline, "the feed never subscribed"
                time.sleep(0.01)
            # Random text: the socket compresses (permessage-deflate), a run of "x" would not
            # fill anything.
            event = {"type": "tick", "pad": base64.b64encode(os.urandom(49_152)).decode()}
            sent = 0
            deadline = time.monotonic() + 30
            while view.subscriber_count > 0:
                assert time.monotonic() < deadline, f"still fed after {sent} events"
                view.publish(*[event] * 16)
                sent += 16
                time.sleep(0.05)
            # The kernel's buffers took some megabytes before the socket stalled; not more.
            assert 16 <= sent <= 2_000
        # The server is fine: a new client gets its snapshot.
        with connect(url, open_timeout=5) as fresh:
            first = json.loads(fresh.recv(timeout=5))
            assert first["type"] == "device" and first["device"]["id"] == DEVICE_IDS[0]
    finally:
        server.close()
