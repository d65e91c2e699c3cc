"""The embedded broker's persistent sessions outlive a restart when it has a state file, and
what it queues for an offline session is bounded (``epic.broker._amqtt``, fixes 4 and 5)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import pytest

from epic.broker.embedded import EmbeddedBroker
from epic.shared.errors import BrokerFileError
from tests.support.mqtt import collect, messages_within

V311 = aiomqtt.ProtocolVersion.V311


def centre(broker: EmbeddedBroker) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host, broker.port, identifier="centre", clean_session=False, protocol=V311, timeout=5
    )


async def publish(broker: EmbeddedBroker, *topics: str) -> None:
    async with aiomqtt.Client(broker.host, broker.port, protocol=V311) as edge:
        for topic in topics:
            await edge.publish(topic, topic.encode(), qos=1)


def test_a_restarted_broker_queues_for_the_sessions_it_had(tmp_path: Path) -> None:
    state = tmp_path / "state.json"

    async def main() -> None:
        async with EmbeddedBroker(port=0, state=state) as first:
            port = first.port
            async with centre(first) as c:
                await c.subscribe("epic/d/latent/+/+", qos=1)
            async with aiomqtt.Client(first.host, port, identifier="tool") as tool:
                await tool.subscribe("epic/d/#", qos=1)  # clean session: not kept
        saved = json.loads(state.read_text())["sessions"]
        assert saved == [
            {"client_id": "centre", "username": None, "subscriptions": [["epic/d/latent/+/+", 1]]}
        ]
        async with EmbeddedBroker(port=port, state=state) as again:
            # Before the centre is back: these wait for it, as they would have before.
            await publish(again, "epic/d/latent/s1/dev-0", "epic/d/status/dev-0")
            async with centre(again) as c:
                got = await collect(c, 1)
                assert await messages_within(c, 0.5) == []
            assert [str(m.topic) for m in got] == ["epic/d/latent/s1/dev-0"]
            async with aiomqtt.Client(
                again.host, port, identifier="centre", clean_session=True, protocol=V311
            ):
                pass  # a clean session ends the persistent one: forgotten
        assert json.loads(state.read_text())["sessions"] == []

    asyncio.run(asyncio.wait_for(main(), 30))


def test_without_a_state_file_a_restart_forgets_the_session(tmp_path: Path) -> None:
    """What the state file is for (and the embedded broker's default, documented)."""

    async def main() -> None:
        async with EmbeddedBroker(port=0) as first:
            port = first.port
            async with centre(first) as c:
                await c.subscribe("epic/d/latent/+/+", qos=1)
        async with EmbeddedBroker(port=port) as again:
            await publish(again, "epic/d/latent/s1/dev-0")
            async with centre(again) as c:
                assert await messages_within(c, 0.5) == []

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_damaged_state_file_is_one_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")

    async def main() -> None:
        async with EmbeddedBroker(port=0, state=state):
            pass

    with pytest.raises(BrokerFileError, match=r"state\.json: cannot read the broker state"):
        asyncio.run(asyncio.wait_for(main(), 30))


def test_an_offline_session_queues_at_most_max_queued_dropping_the_oldest() -> None:
    async def main() -> None:
        async with EmbeddedBroker(port=0) as broker:
            assert broker._broker is not None
            broker._broker.max_queued = 5
            async with centre(broker) as c:
                await c.subscribe("epic/d/#", qos=1)
            await publish(broker, *[f"epic/d/latent/s{k}/dev-0" for k in range(8)])
            async with centre(broker) as c:
                got = await collect(c, 5)
                assert await messages_within(c, 0.5) == []
            assert [str(m.topic) for m in got] == [f"epic/d/latent/s{k}/dev-0" for k in range(3, 8)]
            assert broker._broker.queue_dropped == {"centre": 3}

    asyncio.run(asyncio.wait_for(main(), 30))
