"""EPIC's field broker: the real Mosquitto 2, our config, passwords and ACL, and TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import pytest

from epic.broker.credentials import write_credentials
from epic.broker.passwords import verify_password
from tests.support.mosquitto import MosquittoProcess
from tests.support.mqtt import collect, messages_within, next_message
from tests.support.tls import TlsFiles, make_tls

V311 = aiomqtt.ProtocolVersion.V311
DEVICES = ["dev-0", "dev-1", "dev-2"]


def run(scenario: Awaitable[None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(30):
            await scenario

    asyncio.run(bounded())


@pytest.fixture
def passwords(tmp_path: Path) -> dict[str, str]:
    files = write_credentials(tmp_path / "creds", "d", DEVICES)
    return json.loads(files.credentials.read_text())


@pytest.fixture
def field(
    mosquitto_factory: Callable[..., MosquittoProcess], tmp_path: Path, passwords: dict[str, str]
) -> MosquittoProcess:
    return mosquitto_factory(tmp_path / "creds")


def as_user(
    broker: MosquittoProcess, passwords: dict[str, str], user: str, **kwargs: object
) -> aiomqtt.Client:
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=user,
        password=passwords[user],
        identifier=user,
        protocol=V311,
        timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )


def test_our_hashes_and_mosquitto_passwd_agree(tmp_path: Path) -> None:
    # The other direction (Mosquitto accepting ours) is every login below.
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwd), "alice", "s3cret"], check=True, timeout=30
    )
    encoded = passwd.read_text().strip().split(":", 1)[1]
    assert encoded.startswith("$7$")
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret!", encoded)


def test_anonymous_and_wrong_passwords_are_refused(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        refused: list[dict[str, str]] = [
            {},
            {"username": "dev-1", "password": "not-the-password"},
            {"username": "dev-1", "password": passwords["dev-2"]},
            {"username": "nobody", "password": passwords["dev-1"]},
        ]
        for credentials in refused:
            with pytest.raises(aiomqtt.MqttCodeError):
                async with aiomqtt.Client(
                    field.host, field.port, protocol=V311, timeout=5, **credentials
                ):
                    pass
        for user in ["central", *DEVICES]:  # every generated password works
            async with as_user(field, passwords, user):
                pass

    run(scenario())


def test_a_device_publishes_only_its_own_topics(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with (
            as_user(field, passwords, "central") as central,
            as_user(field, passwords, "dev-1") as dev1,
        ):
            (granted,) = await central.subscribe("epic/d/#", qos=1)
            assert not granted.is_failure
            # dev-1 forging dev-2's latent, status and heartbeat, and another deployment's
            await dev1.publish("epic/d/latent/s1/dev-2", b"forged", qos=1)
            await dev1.publish("epic/d/status/dev-2", b"forged", qos=1)
            await dev1.publish("epic/d/heartbeat/dev-2", b"forged", qos=1)
            await dev1.publish("epic/d/map/s1", b"forged", qos=1)
            # and its own topics
            own = {
                "epic/d/latent/s1/dev-1": b"latent",
                "epic/d/raw/s1/dev-1": b"raw",
                "epic/d/status/dev-1": b"online",
                "epic/d/heartbeat/dev-1": b"{}",
            }
            for topic, payload in own.items():
                await dev1.publish(topic, payload, qos=1)
            got = {str(m.topic): m.payload for m in await collect(central, len(own))}
            assert got == own
            assert await messages_within(central, 1.0) == []  # the forgeries never arrive

    run(scenario())


def test_devices_cannot_read(field: MosquittoProcess, passwords: dict[str, str]) -> None:
    async def scenario() -> None:
        async with (
            as_user(field, passwords, "central") as central,
            as_user(field, passwords, "dev-1") as dev1,
            as_user(field, passwords, "dev-2") as dev2,
        ):
            # Mosquitto 2.0 grants a 3.1.1 SUBSCRIBE and checks `read` on every delivery
            # instead (the embedded broker refuses at SUBSCRIBE): what counts is that
            # nothing arrives.
            for topic in ("epic/d/#", "epic/d/map/+", "epic/d/latent/+/dev-2", "#"):
                await dev1.subscribe(topic, qos=1)
            await central.publish("epic/d/map/s1", b"map", qos=1)
            await dev2.publish("epic/d/latent/s1/dev-2", b"latent", qos=1)
            assert await messages_within(dev1, 1.0) == []

    run(scenario())


def test_central_publishes_maps_but_not_latents(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    async def scenario() -> None:
        async with (
            as_user(field, passwords, "central", clean_session=True) as central,
        ):
            await central.subscribe("epic/d/#", qos=1)
            await central.publish("epic/d/latent/s1/dev-0", b"forged", qos=1)
            await central.publish("epic/d/status/dev-0", b"forged", qos=1)
            await central.publish("epic/other/map/s1", b"elsewhere", qos=1)
            await central.publish("epic/d/map/s1", b"map", qos=1)
            message = await next_message(central)
            assert (str(message.topic), message.payload) == ("epic/d/map/s1", b"map")
            assert await messages_within(central, 1.0) == []

    run(scenario())


def test_queued_latents_and_retained_status_survive_a_restart(
    field: MosquittoProcess, passwords: dict[str, str]
) -> None:
    """persistence true: a centre away during a broker restart still gets its QoS 1 latents."""

    async def before() -> None:
        async with as_user(field, passwords, "central", clean_session=False) as central:
            await central.subscribe("epic/d/#", qos=1)
        async with as_user(field, passwords, "dev-0") as dev0:
            await dev0.publish("epic/d/status/dev-0", b"online", qos=1, retain=True)
            await dev0.publish("epic/d/latent/s7/dev-0", b"latent", qos=1)

    async def after() -> None:
        async with as_user(field, passwords, "central", clean_session=False) as central:
            got = {(str(m.topic), m.payload) for m in await collect(central, 2)}
            assert got == {
                ("epic/d/status/dev-0", b"online"),
                ("epic/d/latent/s7/dev-0", b"latent"),
            }
        async with as_user(field, passwords, "central") as fresh:
            await fresh.subscribe("epic/d/status/+", qos=1)
            retained = await next_message(fresh)
            assert retained.retain and retained.payload == b"online"

    run(before())
    field.stop()  # SIGTERM: Mosquitto writes its persistence file
    field.start()
    run(after())


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls(tmp_path / "tls")


def _tls_client(
    broker: MosquittoProcess, passwords: dict[str, str], cafile: Path
) -> aiomqtt.Client:
    assert broker.tls_port is not None
    context = ssl.create_default_context(cafile=str(cafile))  # verifies the chain and 127.0.0.1
    return aiomqtt.Client(
        broker.host,
        broker.tls_port,
        username="dev-0",
        password=passwords["dev-0"],
        protocol=V311,
        timeout=5,
        tls_context=context,
    )


def test_tls_listener_with_the_right_ca(
    mosquitto_factory: Callable[..., MosquittoProcess],
    tmp_path: Path,
    passwords: dict[str, str],
    tls: TlsFiles,
) -> None:
    broker = mosquitto_factory(tmp_path / "creds", tls=tls)

    async def scenario() -> None:
        async with (
            as_user(broker, passwords, "central") as central,
            _tls_client(broker, passwords, tls.ca) as device,
        ):
            await central.subscribe("epic/d/latent/+/+", qos=1)
            await device.publish("epic/d/latent/s1/dev-0", b"over tls", qos=1)
            assert (await next_message(central)).payload == b"over tls"

    run(scenario())


def test_tls_refuses_a_client_that_trusts_another_ca(
    mosquitto_factory: Callable[..., MosquittoProcess],
    tmp_path: Path,
    passwords: dict[str, str],
    tls: TlsFiles,
) -> None:
    broker = mosquitto_factory(tmp_path / "creds", tls=tls)
    stranger = make_tls(tmp_path / "other-ca", name="Someone else")

    async def scenario() -> None:
        with pytest.raises(aiomqtt.MqttError):
            async with _tls_client(broker, passwords, stranger.ca):
                pass
        # and plain MQTT on the TLS port is not MQTT to it either
        assert broker.tls_port is not None
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                broker.host,
                broker.tls_port,
                username="dev-0",
                password=passwords["dev-0"],
                protocol=V311,
                timeout=1,  # Mosquitto waits for a TLS hello that never comes
            ):
                pass

    run(scenario())
