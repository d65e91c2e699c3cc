"""The field broker (real Mosquitto 2, ``epic broker credentials``' passwords and ACL, our
``mosquitto.conf``): what tests/broker/test_mosquitto.py does not already show.

Already there: anonymous and wrong passwords refused, a device publishing only its own
topics and reading nothing, the centre writing only maps, TLS refused with a wrong CA. Here:
a device cannot take over the centre's session by using its client id (it could, before
``use_username_as_clientid``: the centre was disconnected and its queue emptied), cannot
make the broker speak for another device through a forged Last Will, cannot read ``$SYS``
or even its own retained status, and cannot push a packet bigger than the largest envelope.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import pytest

from epic.broker.credentials import write_credentials
from epic.broker.mosquitto_config import MAX_PACKET_BYTES
from tests.faults.rawmqtt import RawClient
from tests.support.mosquitto import MosquittoProcess
from tests.support.mqtt import collect, messages_within, next_message

V311 = aiomqtt.ProtocolVersion.V311
CENTRE_ID = "epic-central-d"


def run(scenario: Awaitable[None], limit: float = 30) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(limit):
            await scenario

    asyncio.run(bounded())


@pytest.fixture
def passwords(tmp_path: Path) -> dict[str, str]:
    return write_credentials(tmp_path / "creds", "d", ["dev-0", "dev-1"]).passwords


@pytest.fixture
def field(
    mosquitto_factory: Callable[..., MosquittoProcess], tmp_path: Path, passwords: dict[str, str]
) -> MosquittoProcess:
    return mosquitto_factory(tmp_path / "creds")


def client(
    broker: MosquittoProcess,
    passwords: dict[str, str],
    user: str,
    identifier: str | None = None,
    **kwargs: object,
) -> aiomqtt.Client:
    options: dict = {"protocol": V311, "timeout": 5, **kwargs}
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=passwords[user],
        identifier=identifier or user,
        **options,
    )


def test_a_device_cannot_take_over_the_centres_session(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with client(field, passwords, "central", CENTRE_ID, clean_session=False) as c:
            await c.subscribe("epic/d/#", qos=1)
            # dev-1 asks for the centre's client id, both kinds of session.
            for clean in (False, True):
                async with client(field, passwords, "dev-1", CENTRE_ID, clean_session=clean):
                    pass
            async with client(field, passwords, "dev-0") as dev0:
                await dev0.publish("epic/d/latent/s1/dev-0", b"live", qos=1)
            assert (await next_message(c)).payload == b"live"  # still connected, still fed
        # The centre away: a latent waits for it, and dev-1 tries again to empty its queue.
        async with client(field, passwords, "dev-0") as dev0:
            await dev0.publish("epic/d/latent/s2/dev-0", b"queued", qos=1)
        async with client(field, passwords, "dev-1", CENTRE_ID, clean_session=True):
            pass
        async with client(field, passwords, "central", CENTRE_ID, clean_session=False) as c:
            assert [m.payload for m in await collect(c, 1)] == [b"queued"]

    run(scenario())


def test_a_forged_last_will_is_not_published_but_a_devices_own_is(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with client(field, passwords, "central", clean_session=True) as c:
            await c.subscribe("epic/d/status/+", qos=1)
            for will_of in ("dev-0", "dev-1"):  # dev-1 speaking for dev-0, then for itself
                topic = f"epic/d/status/{will_of}"
                raw = await RawClient.connect(
                    field.host,
                    field.port,
                    "dev-1",
                    clean=True,
                    username="dev-1",
                    password=passwords["dev-1"],
                    will=(topic, b'{"online": false}'),
                )
                raw.drop()  # dies without DISCONNECT: the broker publishes the Will
                got = await messages_within(c, 1.5)
                expected = [] if will_of == "dev-0" else [topic]
                assert [str(m.topic) for m in got] == expected
                assert all(json.loads(m.payload) == {"online": False} for m in got)

    run(scenario())


def test_devices_cannot_read_sys_topics_or_their_own_status(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with client(field, passwords, "dev-1") as dev1:
            await dev1.publish("epic/d/status/dev-1", b'{"online": true}', qos=1, retain=True)
            for topic in ("$SYS/#", "epic/d/status/dev-1", "epic/d/heartbeat/+", "+/+/+/+"):
                await dev1.subscribe(topic, qos=1)
            await dev1.publish("epic/d/heartbeat/dev-1", b"{}", qos=1)
            assert await messages_within(dev1, 1.5) == []

    run(scenario())


def test_a_packet_bigger_than_any_envelope_disconnects_its_sender(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with client(field, passwords, "central") as c:
            await c.subscribe("epic/d/#", qos=1)
            with pytest.raises(aiomqtt.MqttError):
                async with client(field, passwords, "dev-1") as dev1:
                    await dev1.publish("epic/d/raw/s1/dev-1", bytes(MAX_PACKET_BYTES), qos=1)
                    await dev1.publish("epic/d/heartbeat/dev-1", b"{}", qos=1)
            async with client(field, passwords, "dev-0") as dev0:  # others are unaffected
                await dev0.publish("epic/d/heartbeat/dev-0", b"{}", qos=1)
            assert [str(m.topic) for m in await collect(c, 1)] == ["epic/d/heartbeat/dev-0"]
            assert await messages_within(c, 0.5) == []

    run(scenario(), limit=60)
