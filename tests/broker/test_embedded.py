"""The embedded broker (amqtt) with real aiomqtt clients over TCP, MQTT 3.1.1."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiomqtt
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher

from epic.broker.acl import render_acl
from epic.broker.embedded import EmbeddedBroker, read_users
from epic.broker.passwords import hash_password
from epic.shared.errors import BrokerFileError
from tests.support.mqtt import collect, messages_within, next_message

V311 = aiomqtt.ProtocolVersion.V311


def run(scenario: Callable[[EmbeddedBroker], Awaitable[None]], **kwargs: object) -> None:
    """Run ``scenario(broker)`` against a fresh embedded broker on a free port; 30 s at most."""

    async def main() -> None:
        async with asyncio.timeout(30), EmbeddedBroker(port=0, **kwargs) as broker:  # type: ignore[arg-type]
            await scenario(broker)

    asyncio.run(main())


def client(broker: EmbeddedBroker, **kwargs: object) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, protocol=V311, timeout=5, **kwargs)  # type: ignore[arg-type]


def test_port_zero_listens_on_a_free_port_and_reports_it() -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        assert broker.port > 0
        assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
        async with client(broker, identifier="sub") as sub, client(broker) as pub:
            await sub.subscribe("epic/d/latent/#", qos=1)
            await pub.publish("epic/d/latent/s1/dev-0", b"\x00\x01", qos=1)
            message = await next_message(sub)
        assert (str(message.topic), message.payload, message.qos) == (
            "epic/d/latent/s1/dev-0",
            b"\x00\x01",
            1,
        )

    run(scenario)


def test_stopping_the_broker_disconnects_its_clients() -> None:
    async def main() -> None:
        async with asyncio.timeout(30):
            async with EmbeddedBroker(port=0) as broker:
                connected = client(broker)
                await connected.__aenter__()
            with pytest.raises(aiomqtt.MqttError):
                await next_message(connected, timeout=5)

    asyncio.run(main())


def test_retained_message_reaches_a_late_subscriber_and_can_be_cleared() -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker) as pub:
            await pub.publish("epic/d/status/dev-0", b'{"online": true}', qos=1, retain=True)
        async with client(broker) as late:
            await late.subscribe("epic/d/status/+", qos=1)
            message = await next_message(late)
            assert message.retain and message.payload == b'{"online": true}'
        async with client(broker) as pub:
            await pub.publish("epic/d/status/dev-0", b"", qos=1, retain=True)  # clears it
        async with client(broker) as later:
            await later.subscribe("epic/d/status/+", qos=1)
            assert await messages_within(later, 0.5) == []

    run(scenario)


def test_a_client_gets_no_retained_messages_for_other_clients_subscriptions() -> None:
    # amqtt 0.12 sends every connecting client the retained messages of all subscriptions;
    # broker._amqtt fixes that.
    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, identifier="central") as central:
            await central.subscribe("epic/d/#", qos=1)
            async with client(broker) as pub:
                await pub.publish("epic/d/status/dev-0", b"online", qos=1, retain=True)
            await next_message(central)
            async with client(broker, identifier="dev-1") as device:
                assert await messages_within(device, 0.5) == []

    run(scenario)


# A device that dies: connected with a Last Will, then SIGKILLed (its TCP connection drops
# without DISCONNECT). `quit` instead makes it disconnect cleanly.
_DEVICE = """
import asyncio, sys, aiomqtt
async def main(port, ending):
    will = aiomqtt.Will("epic/d/status/dev-0", b"offline", qos=1, retain=True)
    async with aiomqtt.Client("127.0.0.1", port, identifier="dev-0", will=will,
                              protocol=aiomqtt.ProtocolVersion.V311) as c:
        await c.publish("epic/d/status/dev-0", b"online", qos=1, retain=True)
        print("up", flush=True)
        if ending == "quit":
            return
        await asyncio.sleep(60)
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


async def _device(broker: EmbeddedBroker, ending: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _DEVICE, str(broker.port), ending, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    async with asyncio.timeout(10):
        assert await process.stdout.readline() == b"up\n"
    return process


def test_last_will_is_published_and_retained_when_a_device_dies() -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, identifier="central") as central:
            await central.subscribe("epic/d/status/+", qos=1)
            device = await _device(broker, "sleep")
            assert (await next_message(central)).payload == b"online"
            device.kill()
            await device.wait()
            will = await next_message(central)
            assert (str(will.topic), will.payload, will.qos) == (
                "epic/d/status/dev-0",
                b"offline",
                1,
            )
        async with client(broker) as late:  # the will's retain flag replaced "online"
            await late.subscribe("epic/d/status/+", qos=1)
            message = await next_message(late)
            assert message.retain and message.payload == b"offline"

    run(scenario)


def test_no_last_will_after_a_clean_disconnect() -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, identifier="central") as central:
            await central.subscribe("epic/d/status/+", qos=1)
            device = await _device(broker, "quit")
            async with asyncio.timeout(10):
                assert await device.wait() == 0
            got = [m.payload for m in await messages_within(central, 1.0)]
            assert got == [b"online"]

    run(scenario)


def test_persistent_session_gets_qos1_messages_published_while_it_was_away() -> None:
    async def scenario(broker: EmbeddedBroker) -> None:
        async with client(broker, identifier="central", clean_session=False) as central:
            await central.subscribe("epic/d/latent/#", qos=1)
        async with client(broker, identifier="fresh", clean_session=True) as fresh:
            await fresh.subscribe("epic/d/latent/#", qos=1)
        await asyncio.sleep(1.2)  # amqtt's session monitor (1 s) has had its turn
        async with client(broker) as device:
            for sample in range(3):
                await device.publish(f"epic/d/latent/s{sample}/dev-0", b"z", qos=1)
        async with client(broker, identifier="central", clean_session=False) as central:
            # Subscriptions survived too: no subscribe call here.
            queued = await collect(central, 3)
            assert sorted(str(m.topic) for m in queued) == [
                f"epic/d/latent/s{i}/dev-0" for i in range(3)
            ]
            assert all(m.qos == 1 for m in queued)
            assert all(m.retain for m in queued)  # amqtt's way; documented in broker.embedded
            async with client(broker) as device:
                await device.publish("epic/d/latent/s3/dev-0", b"z", qos=1)
            assert str((await next_message(central)).topic) == "epic/d/latent/s3/dev-0"
        async with client(broker, identifier="fresh", clean_session=True) as fresh:
            assert await messages_within(fresh, 0.5) == []

    run(scenario)


# --- users and ACL ---------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """A password file ($7$ for central and dev-1, Argon2 for dev-2) and EPIC's ACL."""
    users = tmp_path / "passwd"
    users.write_text(
        "# comment\n"
        f"central:{hash_password('c-secret')}\n"
        f"dev-1:{hash_password('d1-secret', iterations=101)}\n"
        f"dev-2:{Argon2Hasher().hash('d2-secret')}\n"
    )
    acl = tmp_path / "acl"
    acl.write_text(render_acl("d", ["dev-1", "dev-2"]))
    return users, acl


def test_users_file_refuses_anonymous_and_wrong_passwords(site: tuple[Path, Path]) -> None:
    users, _ = site

    async def scenario(broker: EmbeddedBroker) -> None:
        for credentials in ({}, {"username": "dev-1", "password": "nope"}, {"username": "x"}):
            with pytest.raises(aiomqtt.MqttError):
                async with client(broker, **credentials):
                    pass
        for username, password in (
            ("central", "c-secret"),
            ("dev-1", "d1-secret"),
            ("dev-2", "d2-secret"),
        ):
            async with client(broker, username=username, password=password):
                pass

    run(scenario, users=users)


def test_acl_keeps_devices_to_their_own_topics(site: tuple[Path, Path]) -> None:
    users, acl = site

    async def scenario(broker: EmbeddedBroker) -> None:
        central = client(broker, identifier="central", username="central", password="c-secret")
        dev1 = client(broker, identifier="dev-1", username="dev-1", password="d1-secret")
        async with central, dev1:
            (granted,) = await central.subscribe("epic/d/#", qos=1)
            assert not granted.is_failure
            (refused,) = await dev1.subscribe("epic/d/#", qos=1)
            assert refused.is_failure
            (refused,) = await dev1.subscribe("epic/d/map/+", qos=1)
            assert refused.is_failure
            await dev1.publish("epic/d/latent/s1/dev-2", b"forged", qos=1)  # dropped
            await dev1.publish("epic/d/latent/s1/dev-1", b"own", qos=1)
            await central.publish("epic/d/latent/s1/dev-9", b"central-forged", qos=1)  # dropped
            await central.publish("epic/d/map/s1", b"map", qos=1)
            got = {(str(m.topic), m.payload) for m in await messages_within(central, 1.0)}
            assert got == {("epic/d/latent/s1/dev-1", b"own"), ("epic/d/map/s1", b"map")}

    run(scenario, users=users, acl=acl)


def test_bad_files_are_refused_with_their_name_and_line(tmp_path: Path) -> None:
    users = tmp_path / "passwd"
    users.write_text("central:$7$1$AAAA$short\n")
    with pytest.raises(BrokerFileError, match=r"passwd: line 1: user 'central' has a hash"):
        read_users(users)
    acl = tmp_path / "acl"
    acl.write_text("user a\npattern write epic/%u/#\n")

    async def main() -> None:
        async with EmbeddedBroker(port=0, acl=acl):
            pass

    with pytest.raises(BrokerFileError, match=r"acl: line 2: 'pattern' lines are not supported"):
        asyncio.run(main())


def test_subscription_churn_under_an_acl_loses_nothing_to_races(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # amqtt 0.12 walks its subscription table with awaits inside the loop; with an ACL plugin
    # (which yields) clients coming and going made it die with "dictionary changed size
    # during iteration", losing connections and messages. broker._amqtt fixes that.
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite #\n")
    problems: list[str] = []

    async def churn(broker: EmbeddedBroker, i: int) -> None:
        for k in range(15):
            async with client(broker, identifier=f"c{i}") as c:
                await c.subscribe(f"t/{i}/{k}", qos=1)
                await c.publish(f"t/{i}/{k}", b"x", qos=1)

    async def scenario(broker: EmbeddedBroker) -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: problems.append(str(context.get("exception")))
        )
        await asyncio.gather(*(churn(broker, i) for i in range(12)))

    with caplog.at_level(logging.WARNING):
        run(scenario, acl=acl)
        gc.collect()  # "Task exception was never retrieved" is reported when a task is freed
    problems += [r.getMessage() for r in caplog.records if r.name.startswith(("broker", "amqtt"))]
    problems += [r.exc_text or "" for r in caplog.records if r.exc_text]
    assert not [p for p in problems if "changed size" in p or "ended with an error" in p]
