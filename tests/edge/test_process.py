"""``epic edge`` as a real process: the Last Will on SIGKILL, a clean exit on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from epic.shared.pool import ShotPool, parse_sample_id
from epic.shared.wire import unpack
from tests.edge.conftest import FAMILY, POOL_SIZE, REPO, subscriber
from tests.edge.test_daemon import SUB_QOS, assert_int8_close
from tests.edge.test_encoder_runtime import reference_latent
from tests.support.brokers import BrokerProcess

pytestmark = pytest.mark.slow
DEP = "edgetest"


async def start_edge(
    bundle: Path, broker: BrokerProcess, epic_cache: Path, tmp: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "EPIC_CACHE": str(epic_cache),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    log = (tmp / "edge.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "epic",
        "edge",
        "--bundle",
        str(bundle),
        "--device-id",
        "dev-2",
        "--broker",
        broker.url,
        "--source",
        f"sim:{FAMILY}",
        "--rate",
        "4",
        "--pool-size",
        str(POOL_SIZE),
        "--outbox",
        str(tmp / "outbox.sqlite"),
        "--heartbeat-s",
        "0.5",
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        cwd=REPO,
        env=env,
    )
    log.close()
    return process


async def wait_live(sub: aiomqtt.Client, latents: int) -> dict[str, list[aiomqtt.Message]]:
    """Until the edge is online, has sent a heartbeat and ``latents`` envelopes."""
    seen: dict[str, list[aiomqtt.Message]] = {"status": [], "heartbeat": [], "latent": []}
    async for m in sub.messages:
        seen[str(m.topic).split("/")[2]].append(m)
        if seen["status"] and seen["heartbeat"] and len(seen["latent"]) >= latents:
            return seen
    raise AssertionError("unreachable")


async def next_status(sub: aiomqtt.Client) -> dict[str, Any]:
    async for m in sub.messages:
        if "/status/" in str(m.topic):
            return json.loads(m.payload)
    raise AssertionError("unreachable")


def check_latents(messages: list[aiomqtt.Message], pool: ShotPool, full_model: Any) -> None:
    for m in messages:
        env = unpack(m.payload)
        parsed = parse_sample_id(env.sample_id)
        assert parsed is not None and parsed[0] == FAMILY and env.device_id == "dev-2"
        expected = reference_latent(full_model, pool.waveforms(pool.index_of(parsed[1])), 2)
        assert_int8_close(env.data, expected)


def test_last_will_marks_a_killed_edge_offline(
    embedded_broker: BrokerProcess,
    bundle: Path,
    epic_cache: Path,
    pool: ShotPool,
    full_model: Any,
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with subscriber(embedded_broker.host, embedded_broker.port) as sub:
            await sub.subscribe(f"epic/{DEP}/#", qos=SUB_QOS)
            process = await start_edge(bundle, embedded_broker, epic_cache, tmp_path)
            try:
                async with asyncio.timeout(90):
                    seen = await wait_live(sub, latents=2)
            finally:
                process.kill()  # SIGKILL: no goodbye, the broker must speak for it
                await process.wait()
            async with asyncio.timeout(15):
                will = await next_status(sub)
        online = json.loads(seen["status"][0].payload)
        assert online["online"] is True and online["device_id"] == "dev-2"
        assert online["receivers"] == [28, 42] and online["runtime"] == "onnx"
        assert online["source"]["pool"] == {"family": FAMILY, "size": POOL_SIZE, "seed": 0}
        beat = json.loads(seen["heartbeat"][-1].payload)
        assert beat["device_id"] == "dev-2" and beat["uptime_s"] > 0
        check_latents(seen["latent"], pool, full_model)
        assert will["online"] is False and will["reason"] == "lost"
        assert will["since_ns"] == online["since_ns"]
        # A late subscriber finds the device offline: the Will was retained.
        async with subscriber(embedded_broker.host, embedded_broker.port) as late:
            await late.subscribe(f"epic/{DEP}/status/dev-2", qos=SUB_QOS)
            async with asyncio.timeout(5):
                async for m in late.messages:
                    assert m.retain and json.loads(m.payload)["reason"] == "lost"
                    break

    asyncio.run(scenario())


def test_sigterm_says_offline_keeps_the_outbox_and_exits_0(
    embedded_broker: BrokerProcess, bundle: Path, epic_cache: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with subscriber(embedded_broker.host, embedded_broker.port) as sub:
            await sub.subscribe(f"epic/{DEP}/status/+", qos=SUB_QOS)
            await sub.subscribe(f"epic/{DEP}/latent/#", qos=SUB_QOS)
            process = await start_edge(bundle, embedded_broker, epic_cache, tmp_path)
            try:
                async with asyncio.timeout(90):
                    async for m in sub.messages:
                        if "/latent/" in str(m.topic):
                            break
                process.send_signal(signal.SIGTERM)
                async with asyncio.timeout(20):
                    code = await process.wait()
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            async with asyncio.timeout(5):
                status = await next_status(sub)
        log = (tmp_path / "edge.log").read_text()
        assert code == 0, log
        assert status["online"] is False and status["reason"] == "shutdown"
        assert (tmp_path / "outbox.sqlite").is_file()
        assert "connected to mqtt://" in log and "said offline" in log

    asyncio.run(scenario())
