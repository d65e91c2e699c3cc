"""The edge against the field broker: real Mosquitto 2 with TLS, passwords and the ACL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from epic.broker.credentials import CENTRAL_USER, write_credentials
from epic.cli import main
from epic.shared.wire import unpack
from tests.edge.conftest import FAMILY, POOL_SIZE
from tests.support.mosquitto import MosquittoProcess
from tests.support.mqtt import messages_within
from tests.support.tls import make_tls

DEP = "edgetest"


def test_edge_over_tls_with_its_own_user_and_the_password_from_the_environment(
    mosquitto_factory: Callable[..., MosquittoProcess],
    bundle: Path,
    epic_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = write_credentials(tmp_path / "creds", DEP, [f"dev-{i}" for i in range(5)])
    tls = make_tls(tmp_path / "tls")
    broker = mosquitto_factory(tmp_path / "creds", tls=tls)
    monkeypatch.setenv("EPIC_MQTT_PASSWORD", files.passwords["dev-3"])
    monkeypatch.setenv("EPIC_CACHE", str(epic_cache))
    argv = [
        "edge",
        "--bundle",
        str(bundle),
        "--device-id",
        "dev-3",
        "--broker",
        f"mqtts://127.0.0.1:{broker.tls_port}",
        "--tls-ca",
        str(tls.ca),
        "--username",
        "dev-3",
        "--source",
        f"sim:{FAMILY}",
        "--pool-size",
        str(POOL_SIZE),
        "--start-slot",
        "0",
        "--max-samples",
        "2",
        "--outbox",
        str(tmp_path / "ob.sqlite"),
    ]

    async def scenario() -> list[aiomqtt.Message]:
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=CENTRAL_USER,
            password=files.passwords[CENTRAL_USER],
            protocol=aiomqtt.ProtocolVersion.V311,
            timeout=5,
        ) as central:
            await central.subscribe(f"epic/{DEP}/#", qos=1)
            await asyncio.to_thread(main, argv)  # the whole command, in a thread; exit 0
            return await messages_within(central, 1.0)

    async def bounded() -> list[aiomqtt.Message]:
        async with asyncio.timeout(60):
            return await scenario()

    got = asyncio.run(bounded())
    latents = [unpack(m.payload) for m in got if "/latent/" in str(m.topic)]
    assert [e.sample_id for e in latents] == [f"{FAMILY}-0", f"{FAMILY}-1"]
    assert all(e.device_id == "dev-3" for e in latents)
    statuses = [json.loads(m.payload) for m in got if "/status/" in str(m.topic)]
    assert [s["online"] for s in statuses] == [True, False]
    assert any("/heartbeat/dev-3" in str(m.topic) for m in got)


def test_wrong_password_keeps_retrying_and_loses_nothing(
    mosquitto_factory: Callable[..., MosquittoProcess],
    bundle: Path,
    epic_cache: Path,
    tmp_path: Path,
) -> None:
    from epic.edge.connection import BrokerEndpoint
    from tests.edge.conftest import edge_config, running

    write_credentials(tmp_path / "creds", DEP, ["dev-1"])
    broker = mosquitto_factory(tmp_path / "creds")
    endpoint = BrokerEndpoint.parse(broker.url, username="dev-1", password="wrong")

    async def scenario() -> None:
        config = edge_config(
            bundle, broker.url, tmp_path / "ob.sqlite", epic_cache, broker=endpoint, max_samples=2
        )
        async with running(config) as (daemon, _):
            while daemon.stats.connect_failures < 2 or daemon.outbox.depth < 2:
                await asyncio.sleep(0.05)
        assert daemon.stats.connects == 0 and daemon.outbox.depth == 2

    async def bounded() -> None:
        async with asyncio.timeout(30):
            await scenario()

    asyncio.run(bounded())
