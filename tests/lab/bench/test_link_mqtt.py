"""MQTT through the link emulator: an edge-like publisher behind a 4g link, a subscriber
connected to the real embedded broker directly."""

from __future__ import annotations

import asyncio

import aiomqtt

from epic.lab.bench.link import LinkProxy
from tests.support.brokers import BrokerProcess
from tests.support.mqtt import next_message

V311 = aiomqtt.ProtocolVersion.V311


def test_a_qos1_publish_through_a_4g_link_reaches_a_direct_subscriber(
    embedded_broker: BrokerProcess,
) -> None:
    payload = bytes(range(256)) * 80  # 20 kB: ~80 ms at 4g's loss-limited 2.02 Mbit/s
    topic = "epic/bench/latent/s-1/dev-0"

    async def main() -> None:
        host, port = embedded_broker.host, embedded_broker.port
        async with (
            asyncio.timeout(30),
            LinkProxy("127.0.0.1", 0, host, port, "4g", seed=1) as link,
            aiomqtt.Client(host, port, identifier="centre", protocol=V311, timeout=10) as sub,
            aiomqtt.Client("127.0.0.1", link.port, identifier="dev-0", protocol=V311) as edge,
        ):
            await sub.subscribe("epic/bench/latent/#", qos=1)
            before = link.stats()
            loop = asyncio.get_running_loop()
            start = loop.time()
            await edge.publish(topic, payload, qos=1)  # returns on the PUBACK
            acked = loop.time() - start
            message = await next_message(sub, timeout=10)
            arrived = loop.time() - start
            after = link.stats()

        assert (str(message.topic), message.payload) == (topic, payload)
        # The PUBACK crossed the link both ways; the message needs at least the way up.
        assert acked >= 2 * 0.050 + len(payload) * 8 / 15e6
        assert arrived >= 0.050
        # Wire bytes, MQTT 3.1.1 framing: type byte, 3-byte remaining length, 2-byte topic
        # length, topic, 2-byte packet id, payload; the PUBACK (4 bytes) the other way.
        assert after.bytes_up - before.bytes_up == 1 + 3 + 2 + len(topic) + 2 + len(payload)
        assert after.bytes_down - before.bytes_down == 4
        assert after.connections == 1

    asyncio.run(main())
