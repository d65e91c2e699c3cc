"""``epic broker credentials``' NATS users, enforced by a real ``nats-server`` (MQTT with
JetStream): each device may write only its own topics and read nothing, the centre reads
the deployment (QoS 1, persistent) and writes only maps, a wrong password is refused."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiomqtt
import pytest

from epic.broker.credentials import write_credentials
from epic.broker.nats_auth import mqtt_filter_to_subject, mqtt_filter_to_subjects
from tests.support.nats import NatsCluster


@pytest.mark.parametrize(
    ("topic", "subjects"),
    [
        ("epic/north/#", ["epic.north", "epic.north.>"]),
        ("epic/north/latent/+/dev-0", ["epic.north.latent.*.dev-0"]),
        ("#", [">"]),
    ],
)
def test_topic_filters_become_the_subjects_nats_checks(topic: str, subjects: list[str]) -> None:
    assert mqtt_filter_to_subjects(topic) == subjects


def test_a_dot_in_a_level_is_the_servers_double_slash() -> None:
    assert mqtt_filter_to_subject("epic/north/latent/line1.shot-1/dev-0") == (
        "epic.north.latent.line1//shot-1.dev-0"
    )
    with pytest.raises(ValueError, match="empty level"):
        mqtt_filter_to_subject("epic//x")


@pytest.mark.timeout(90)
def test_a_real_nats_server_enforces_the_field_rules(tmp_path: Path) -> None:
    creds = write_credentials(tmp_path / "creds", "north", ["dev-0", "dev-1"], bcrypt_rounds=4)
    assert creds.nats_auth.stat().st_mode & 0o777 == 0o600
    server = NatsCluster(tmp_path / "nats", nodes=1, auth=creds.nats_auth)
    server.start()
    pw = creds.passwords
    port = server.mqtt_ports[0]

    def client(user: str, password: str, ident: str) -> aiomqtt.Client:
        return aiomqtt.Client(server.host, port, username=user, password=password, identifier=ident)

    async def main() -> list[str]:
        got: list[str] = []
        async with client("central", pw["central"], "central") as centre:
            await centre.subscribe("epic/north/#", qos=1)

            async def read() -> None:
                async for message in centre.messages:
                    got.append(f"{message.topic}={message.payload.decode()}")

            reader = asyncio.create_task(read())
            async with client("dev-0", pw["dev-0"], "dev-0") as device:
                await device.publish("epic/north/latent/s-1/dev-0", b"own", qos=1)
                await device.publish("epic/north/latent/s-1/dev-1", b"spoof", qos=1)
                await device.publish("epic/south/latent/s-1/dev-0", b"other", qos=1)
            async with client("dev-1", pw["dev-1"], "dev-1") as snoop:
                await snoop.subscribe("epic/north/#", qos=1)  # refused by the server
                async with client("dev-0", pw["dev-0"], "dev-0") as device:
                    await device.publish("epic/north/latent/s-2/dev-0", b"own2", qos=1)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        async for message in snoop.messages:
                            got.append(f"SNOOPED {message.topic}")
            await centre.publish("epic/north/map/s-1", b"map", qos=1)
            await centre.publish("epic/north/latent/s-3/dev-0", b"centre-spoof", qos=1)
            await asyncio.sleep(1.0)
            reader.cancel()
        with pytest.raises(aiomqtt.MqttError):
            async with client("dev-1", "wrong", "dev-1x"):
                pass
        return got

    try:
        got = asyncio.run(main())
    finally:
        server.stop()
    assert sorted(got) == [
        "epic/north/latent/s-1/dev-0=own",
        "epic/north/latent/s-2/dev-0=own2",
        "epic/north/map/s-1=map",
    ], got
    log = server.logs()
    assert 'Publish Violation - User "dev-0", Subject "epic.north.latent.s-1.dev-1"' in log
    assert 'Subscription Violation - User "dev-1"' in log
    assert 'Publish Violation - User "central", Subject "epic.north.latent.s-3.dev-0"' in log
