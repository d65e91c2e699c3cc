"""Fixtures for the edge tests: one bundle, one tiny shot pool, the full model; real brokers.

Built once per session and kept small: the bundle of the shipped model (with ONNX), a pool
of 2 flatfault-a shots, and helpers that run an edge daemon in this process against a
real broker (the embedded amqtt one, in-process or as ``epic broker``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from epic.edge.config import EdgeConfig
from epic.edge.connection import BrokerEndpoint
from epic.edge.daemon import EdgeDaemon
from epic.shared.bundle import Manifest, write_bundle
from epic.shared.pool import ShotPool

REPO = Path(__file__).resolve().parents[2]
CHECKPOINT = REPO / "models" / "epic-lite-5.pt"
FAMILY = "flatfault-a"
POOL_SIZE = 2


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    write_bundle(CHECKPOINT, out, "edgetest", onnx=True)
    return out


@pytest.fixture(scope="session")
def manifest(bundle: Path) -> Manifest:
    from epic.shared.bundle import load_manifest

    return load_manifest(bundle)


@pytest.fixture(scope="session")
def epic_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ``EPIC_CACHE`` root whose ``pool/`` holds the test pool, simulated once."""
    root = tmp_path_factory.mktemp("epic-cache")
    ShotPool.open(FAMILY, size=POOL_SIZE, cache_dir=root / "pool")
    return root


@pytest.fixture(scope="session")
def pool(epic_cache: Path) -> ShotPool:
    return ShotPool.open(FAMILY, size=POOL_SIZE, cache_dir=epic_cache / "pool")


@pytest.fixture(scope="session")
def full_model() -> Any:
    from epic.shared.models.checkpoint import load_checkpoint

    model, _ = load_checkpoint(CHECKPOINT)
    return model.eval()


def edge_config(
    bundle: Path, url: str, outbox: Path, epic_cache: Path, **overrides: Any
) -> EdgeConfig:
    """A quick, deterministic edge: slots 0, 1, ... of the test pool as fast as it can."""
    base: dict[str, Any] = dict(
        bundle=bundle,
        device_id="dev-1",
        broker=BrokerEndpoint.parse(url),
        source=f"sim:{FAMILY}",
        rate=1.0,
        start_slot=0,
        pool_size=POOL_SIZE,
        cache_dir=epic_cache / "pool",
        outbox=outbox,
        heartbeat_s=0.5,
        backoff_min_s=0.2,
        backoff_max_s=1.0,
    )
    return EdgeConfig(**{**base, **overrides})  # validated again, overrides and all


@contextlib.asynccontextmanager
async def running(config: EdgeConfig) -> AsyncIterator[tuple[EdgeDaemon, asyncio.Task[None]]]:
    """An edge daemon running in this loop; stopped (and awaited, 20 s at most) on exit."""
    async with EdgeDaemon(config) as daemon:
        task = asyncio.create_task(daemon.run())
        try:
            yield daemon, task
        finally:
            daemon.request_stop()
            async with asyncio.timeout(20):
                await task


def subscriber(host: str, port: int, **kwargs: Any) -> aiomqtt.Client:
    return aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V311, timeout=5, **kwargs)
