"""The `embedded_broker` fixture (tests/support/brokers.py): `epic broker` as a process."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from tests.support.brokers import BrokerProcess
from tests.support.mqtt import next_message


async def _roundtrip(broker: BrokerProcess, topic: str) -> None:
    async with asyncio.timeout(15):
        async with aiomqtt.Client(broker.host, broker.port, timeout=5) as c:
            await c.subscribe(topic, qos=1)
            await c.publish(topic, b"x", qos=1)
            assert (await next_message(c)).payload == b"x"


def test_fixture_broker_stops_and_restarts_on_the_same_port(embedded_broker: BrokerProcess) -> None:
    port = embedded_broker.port
    asyncio.run(_roundtrip(embedded_broker, "epic/d/heartbeat/dev-0"))

    async def connect_while_down() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(embedded_broker.host, port, timeout=2):
                pass

    embedded_broker.stop(kill=True)  # a crash: no clean shutdown
    assert not embedded_broker.running
    asyncio.run(connect_while_down())
    embedded_broker.start()
    assert embedded_broker.port == port
    asyncio.run(_roundtrip(embedded_broker, "epic/d/heartbeat/dev-0"))
    embedded_broker.stop()  # SIGTERM: `epic broker` shuts down cleanly and says so
    assert "epic broker: stopped" in embedded_broker.log()
