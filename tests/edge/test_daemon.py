"""The edge daemon in this process against a real broker (the embedded amqtt one)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import aiomqtt
import numpy as np
import pytest

from epic.broker.embedded import EmbeddedBroker
from epic.edge.sources.base import slot_ns
from epic.shared.bundle import Manifest
from epic.shared.pool import ShotPool
from epic.shared.wire import Compression, LatentDtype, unpack
from tests.edge.conftest import FAMILY, edge_config, running, subscriber
from tests.edge.test_encoder_runtime import reference_latent
from tests.support.mqtt import messages_within

DEP = "edgetest"
# Test subscribers take QoS 0 from the broker. amqtt 0.12 registers its PUBACK waiter only
# after sending a QoS 1 PUBLISH (and awaiting plugin events): a subscriber that acks fast is
# logged "Received PUBACK for unknown pending message" and, in our runs, stopped receiving.
# The edge's own leg (edge -> broker) is QoS 1 throughout, which is what these tests check.
SUB_QOS = 0
HEARTBEAT_KEYS = {
    "device_id",
    "time_ns",
    "uptime_s",
    "samples_encoded",
    "encode_ms_p50",
    "encode_ms_p95",
    "bytes_sent",
    "envelopes_sent",
    "outbox_depth",
    "outbox_bytes",
    "dropped",
    "reconnects",
}


def run(scenario: Any, limit: float = 60) -> None:
    async def main() -> None:
        async with asyncio.timeout(limit):
            await scenario()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_int8_close(latent: np.ndarray, expected: np.ndarray) -> None:
    """Within int8 rounding (half a step of the per-tensor scale) and onnx/torch noise."""
    step = np.abs(expected).max() / 127
    assert np.abs(latent - expected).max() <= step / 2 + 1e-4


def test_edge_publishes_latents_status_and_heartbeat(
    bundle: Path,
    manifest: Manifest,
    epic_cache: Path,
    pool: ShotPool,
    full_model: Any,
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with EmbeddedBroker(port=0) as broker:
            config = edge_config(
                bundle, broker.url, tmp_path / "ob.sqlite", epic_cache, max_samples=3
            )
            async with subscriber(broker.host, broker.port) as sub:
                await sub.subscribe(f"epic/{DEP}/#", qos=SUB_QOS)
                async with running(config) as (daemon, task):
                    await task  # max_samples: it stops itself once the outbox has drained
                got = await messages_within(sub, 0.5)
            async with subscriber(broker.host, broker.port) as late:
                await late.subscribe(f"epic/{DEP}/status/+", qos=SUB_QOS)
                retained = await messages_within(late, 0.5)

        by_kind: dict[str, list[aiomqtt.Message]] = {}
        for m in got:
            by_kind.setdefault(str(m.topic).split("/")[2], []).append(m)
        latents = by_kind["latent"]
        assert [str(m.topic) for m in latents] == [
            f"epic/{DEP}/latent/{FAMILY}-{k}/dev-1" for k in range(3)
        ]
        for k, m in enumerate(latents):
            env = unpack(m.payload)
            assert (env.deployment, env.sample_id, env.device_id) == (DEP, f"{FAMILY}-{k}", "dev-1")
            assert env.model_hash == manifest.model_hash and env.dtype == LatentDtype.INT8
            assert env.acquired_ns == slot_ns(k, 1.0) and env.encode_us > 0
            assert env.data.shape == (48,)
            assert_int8_close(env.data, reference_latent(full_model, pool.waveforms(k % 2), 1))
            assert len(m.payload) < 150  # 48 int8 numbers and the header
        first, last = (json.loads(m.payload) for m in (by_kind["status"][0], by_kind["status"][-1]))
        assert first["online"] is True and last["online"] is False
        assert last["reason"] == "shutdown"
        assert first["device_id"] == "dev-1" and first["bundle_hash"] == manifest.model_hash
        assert first["receivers"] == [14, 28] and first["mode"] == "latent"
        assert first["runtime"] == "onnx" and first["software"] and first["since_ns"] > 0
        beat = json.loads(by_kind["heartbeat"][0].payload)
        assert set(beat) >= HEARTBEAT_KEYS and beat["device_id"] == "dev-1"
        # What a subscriber arriving afterwards learns: the device went offline cleanly.
        assert len(retained) == 1 and retained[0].retain
        assert json.loads(retained[0].payload)["online"] is False
        assert daemon.stats.envelopes_sent == 3 and daemon.outbox.depth == 0

    run(scenario)


@pytest.mark.parametrize(
    ("mode", "dtype", "compress"), [("raw", None, "none"), ("latent", "int8-channel", "zstd")]
)
def test_raw_blocks_and_other_wire_formats(
    bundle: Path,
    epic_cache: Path,
    pool: ShotPool,
    tmp_path: Path,
    mode: str,
    dtype: str | None,
    compress: str,
) -> None:
    async def scenario() -> None:
        async with EmbeddedBroker(port=0) as broker:
            config = edge_config(
                bundle,
                broker.url,
                tmp_path / "ob.sqlite",
                epic_cache,
                max_samples=2,
                mode=mode,
                dtype=dtype,
                compress=compress,
                start_slot=5,
            )
            async with subscriber(broker.host, broker.port) as sub:
                await sub.subscribe(f"epic/{DEP}/{mode}/#", qos=SUB_QOS)
                async with running(config) as (_, task):
                    await task
                got = await messages_within(sub, 0.5)
        assert [str(m.topic) for m in got] == [
            f"epic/{DEP}/{mode}/{FAMILY}-{k}/dev-1" for k in (5, 6)
        ]
        env = unpack(got[0].payload)
        if mode == "raw":
            # The centralized baseline's upload: the device's raw float32 block, untouched.
            assert env.dtype == LatentDtype.FLOAT32 and env.compression == Compression.NONE
            np.testing.assert_array_equal(env.data, pool.waveforms(1, (14, 28)))
            assert 280_000 < len(got[0].payload) < 280_200
        else:
            assert env.dtype == LatentDtype.INT8_CHANNEL and env.compression == Compression.ZSTD
            assert env.data.shape == (48,)

    run(scenario)


def test_outbox_survives_a_daemon_restart(bundle: Path, epic_cache: Path, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite"

    async def offline() -> None:
        # Nothing listens on this port: three samples wait in the outbox, then we stop.
        dead = f"mqtt://127.0.0.1:{free_port()}"
        config = edge_config(bundle, dead, outbox, epic_cache, max_samples=3)
        async with running(config) as (daemon, _):
            while daemon.outbox.depth < 3 or daemon.stats.connect_failures < 1:
                await asyncio.sleep(0.05)
        assert daemon.stats.envelopes_sent == 0

    async def online() -> None:
        async with EmbeddedBroker(port=0) as broker:
            config = edge_config(
                bundle, broker.url, outbox, epic_cache, max_samples=1, start_slot=10
            )
            async with subscriber(broker.host, broker.port) as sub:
                await sub.subscribe(f"epic/{DEP}/latent/#", qos=SUB_QOS)
                async with running(config) as (daemon, task):
                    await task
                got = await messages_within(sub, 0.5)
        assert [unpack(m.payload).sample_id for m in got] == [
            f"{FAMILY}-{k}" for k in (0, 1, 2, 10)
        ]
        assert daemon.outbox.depth == 0

    run(offline)
    run(online)


@pytest.mark.slow
def test_broker_outage_every_sample_arrives_once_in_order(
    bundle: Path, epic_cache: Path, tmp_path: Path
) -> None:
    """Broker stopped ~10 s and restarted on the same port, the edge streaming at 2 Hz."""
    port = free_port()
    arrivals: list[tuple[int, int]] = []  # (slot, phase)

    async def listen(client: aiomqtt.Client, phase: int, first: asyncio.Event) -> None:
        try:
            async for m in client.messages:
                arrivals.append((int(unpack(m.payload).sample_id.rsplit("-", 1)[1]), phase))
                first.set()
        except aiomqtt.MqttError:
            pass  # the broker went away

    async def scenario() -> None:
        config = edge_config(
            bundle,
            f"mqtt://127.0.0.1:{port}",
            tmp_path / "ob.sqlite",
            epic_cache,
            rate=2.0,
            start_slot=None,
            heartbeat_s=1.0,
            backoff_min_s=0.2,
            backoff_max_s=2.0,
        )
        broker = EmbeddedBroker(port=port)
        await broker.__aenter__()
        sub = subscriber("127.0.0.1", port)
        await sub.__aenter__()
        await sub.subscribe(f"epic/{DEP}/latent/#", qos=SUB_QOS)
        got = asyncio.Event()
        listener = asyncio.create_task(listen(sub, 1, got))
        async with running(config) as (daemon, _):
            for _ in range(3):  # the stream is live
                got.clear()
                await got.wait()
            # Stop right after an arrival: the next sample is half a second away.
            await broker.__aexit__(None, None, None)
            t_down = time.time_ns()
            await listener
            await sub.__aexit__(None, None, None)
            await asyncio.sleep(10)
            # Restart right after a failed attempt: the edge's next try is >= 1 s away, time
            # enough for our subscriber to be back first (the broker keeps no sessions).
            failures = daemon.stats.connect_failures
            while daemon.stats.connect_failures == failures:
                await asyncio.sleep(0.01)
            broker = EmbeddedBroker(port=port)
            await broker.__aenter__()
            t_up = time.time_ns()
            sub = subscriber("127.0.0.1", port)
            await sub.__aenter__()
            await sub.subscribe(f"epic/{DEP}/latent/#", qos=SUB_QOS)
            got = asyncio.Event()
            listener = asyncio.create_task(listen(sub, 2, got))
            live_from = (t_up + 1_500_000_000) * 2 // 1_000_000_000  # slots after the backlog
            while not arrivals or arrivals[-1][0] < live_from:
                await asyncio.sleep(0.05)
            stats = daemon.stats
        listener.cancel()
        await sub.__aexit__(None, None, None)
        await broker.__aexit__(None, None, None)

        slots = [s for s, _ in arrivals]
        during = [k for k in range(slots[0], slots[-1] + 1) if t_down < slot_ns(k, 2.0) < t_up]
        assert len(during) >= 18  # ~10 s at 2 Hz
        for k in during:
            assert slots.count(k) == 1, f"slot {k} arrived {slots.count(k)} times"
            assert (k, 2) in arrivals  # after the reconnect
        assert sorted(set(slots)) == list(range(slots[0], slots[-1] + 1))  # no gap
        after = [s for s, phase in arrivals if phase == 2]
        assert after == sorted(after)  # in order
        assert stats.reconnects == 1 and stats.connect_failures >= 3

    run(scenario, limit=90)


@pytest.mark.parametrize(("rate", "least", "most"), [(4.0, 2, 6), (0.2, 6, 14)])
def test_heartbeats_give_way_to_latents(
    bundle: Path, epic_cache: Path, tmp_path: Path, rate: float, least: int, most: int
) -> None:
    """Over 4 s after the first heartbeat: while latents flow (4 a second) a heartbeat goes
    once more with every figure and then every ``stats_s`` (1.5 s) only; with one latent in
    5 s, one after each ``heartbeat_s`` (0.3 s) of silence."""

    async def scenario() -> None:
        async with EmbeddedBroker(port=0) as broker:
            config = edge_config(
                bundle,
                broker.url,
                tmp_path / "ob.sqlite",
                epic_cache,
                rate=rate,
                start_slot=None,
                heartbeat_s=0.3,
                stats_s=1.5,
            )
            async with subscriber(broker.host, broker.port) as sub:
                await sub.subscribe(f"epic/{DEP}/#", qos=SUB_QOS)
                async with running(config):
                    async for m in sub.messages:  # connected (loading the model takes a while)
                        if "/heartbeat/" in str(m.topic):
                            break
                    got = await messages_within(sub, 4.0)
        kinds = [str(m.topic).split("/")[2] for m in got]
        assert kinds.count("latent") >= (10 if rate > 1 else 0)
        assert least <= kinds.count("heartbeat") <= most, kinds
        beats = [json.loads(m.payload) for m in got if "/heartbeat/" in str(m.topic)]
        full = [b for b in beats if set(b) >= HEARTBEAT_KEYS]
        assert all("time_ns" in b for b in beats)
        # Every figure 0.3 s after the first, then every stats_s (1.5 s): the rest say what
        # changed.
        assert 2 <= len(full) <= 4
        if rate < 1:  # idle between latents: most say only that the device is alive
            assert sum(set(b) == {"time_ns"} for b in beats) >= least - 4

    run(scenario)
