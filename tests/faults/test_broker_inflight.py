"""The embedded broker keeps a QoS 1 message that was in flight to a persistent session when
that session's connection died, and sends it again when the session comes back ([MQTT-4.4.0-1]:
unacknowledged PUBLISH packets are re-sent on reconnect; Mosquitto does). amqtt 0.12 dropped
it: its flow forgets the message however the wait for the PUBACK ends (``epic.broker._amqtt``).

For EPIC this is the centre killed while a latent was on its way to it: without the fix that
latent was gone, and its sample decoded partial or not at all after the restart."""

from __future__ import annotations

import asyncio

import aiomqtt

from epic.broker.embedded import EmbeddedBroker
from tests.support.mqtt import collect, messages_within

from .rawmqtt import RawClient

V311 = aiomqtt.ProtocolVersion.V311


def test_a_message_in_flight_to_a_dying_persistent_session_is_sent_again() -> None:
    async def main() -> None:
        async with asyncio.timeout(30), EmbeddedBroker(port=0) as broker:
            centre = await RawClient.connect(broker.host, broker.port, "centre", clean=False)
            await centre.subscribe("epic/d/#", qos=1)
            async with aiomqtt.Client(broker.host, broker.port, protocol=V311) as edge:
                await edge.publish("epic/d/latent/s1/dev-0", b"in flight", qos=1)
                topic, payload, _ = await centre.next_publish()
                assert (topic, payload) == ("epic/d/latent/s1/dev-0", b"in flight")
                centre.drop()  # killed before its PUBACK left
                await asyncio.sleep(0.5)  # the broker sees the connection go
                await edge.publish("epic/d/latent/s2/dev-0", b"queued", qos=1)
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                identifier="centre",
                clean_session=False,
                protocol=V311,
                timeout=5,
            ) as back:
                got = await collect(back, 2, timeout=10)
                assert await messages_within(back, 0.5) == []  # each once, no more
            assert sorted((str(m.topic), m.payload) for m in got) == [
                ("epic/d/latent/s1/dev-0", b"in flight"),
                ("epic/d/latent/s2/dev-0", b"queued"),
            ]

    asyncio.run(main())


def test_a_message_acknowledged_late_is_not_sent_again() -> None:
    """The other side of keeping unacknowledged messages: one whose PUBACK did come (however
    late) is forgotten, so a reconnect does not deliver it twice."""

    async def main() -> None:
        async with asyncio.timeout(30), EmbeddedBroker(port=0) as broker:
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                identifier="centre",
                clean_session=False,
                protocol=V311,
                timeout=5,
            ) as centre:
                await centre.subscribe("epic/d/#", qos=1)
                async with aiomqtt.Client(broker.host, broker.port, protocol=V311) as edge:
                    await edge.publish("epic/d/latent/s1/dev-0", b"acked", qos=1)
                await collect(centre, 1)
            async with aiomqtt.Client(
                broker.host,
                broker.port,
                identifier="centre",
                clean_session=False,
                protocol=V311,
                timeout=5,
            ) as back:
                assert await messages_within(back, 1.0) == []

    asyncio.run(main())
