"""The embedded broker with a users file: a client must prove who it is before its client id
counts for anything, and its client id is its user name (``epic.broker._connect_gate``).

Before: amqtt deleted the session named by a clean-session CONNECT *before* checking the
password, so anyone able to reach the port could empty the centre's queue by connecting
with its (predictable) client id and any password; and a device with its own password
could take over the centre's connection the same way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomqtt
import pytest

from epic.broker.credentials import write_credentials
from epic.broker.embedded import EmbeddedBroker
from tests.support.mqtt import collect, messages_within, next_message

V311 = aiomqtt.ProtocolVersion.V311
CENTRE_ID = "epic-central-d"


@pytest.fixture
def passwords(tmp_path: Path) -> dict[str, str]:
    return write_credentials(tmp_path / "creds", "d", ["dev-0", "dev-1"], iterations=1000).passwords


def test_the_centres_session_survives_strangers_and_devices_using_its_client_id(
    tmp_path: Path, passwords: dict[str, str]
) -> None:
    creds = tmp_path / "creds"

    def as_(
        broker: EmbeddedBroker, user: str, password: str | None = None, **kw: object
    ) -> aiomqtt.Client:
        options: dict = {"protocol": V311, "timeout": 5, "identifier": user, **kw}
        return aiomqtt.Client(
            broker.host, broker.port, username=user, password=password or passwords[user], **options
        )

    async def main() -> None:
        async with EmbeddedBroker(port=0, users=creds / "passwd", acl=creds / "acl") as broker:
            async with as_(broker, "central", identifier=CENTRE_ID, clean_session=False) as c:
                await c.subscribe("epic/d/#", qos=1)
                # A device with its own password asks for the centre's id: it gets its own.
                async with as_(broker, "dev-1", identifier=CENTRE_ID, clean_session=True):
                    pass
                async with as_(broker, "dev-0") as dev0:
                    await dev0.publish("epic/d/latent/s1/dev-0", b"live", qos=1)
                assert (await next_message(c)).payload == b"live"  # not disconnected
            async with as_(broker, "dev-0") as dev0:  # the centre away: this waits for it
                await dev0.publish("epic/d/latent/s2/dev-0", b"queued", qos=1)
            # A stranger with the centre's id, a clean session and a wrong password.
            for user in ("central", "dev-1", "nobody"):
                with pytest.raises(aiomqtt.MqttCodeError):
                    async with as_(
                        broker, user, password="wrong", identifier=CENTRE_ID, clean_session=True
                    ):
                        pass
            async with as_(broker, "central", identifier=CENTRE_ID, clean_session=False) as c:
                assert [m.payload for m in await collect(c, 1)] == [b"queued"]
                assert await messages_within(c, 0.3) == []

    asyncio.run(asyncio.wait_for(main(), 30))
