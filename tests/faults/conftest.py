"""Real parts for the fault tests: the shipped model's bundle, real edge daemons (their own
encoder, outbox and MQTT connection each) on a simulated stream, and a real broker and centre.

The centre's fixtures (``bundle``, ``pool``, ``feed``) are the service tests' own, shared
rather than re-made. Edges start at one agreed time slot and produce a fixed number of shots,
so a test knows exactly which samples must come out the other end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from epic.edge.config import EdgeConfig
from epic.edge.connection import BrokerEndpoint
from epic.edge.daemon import EdgeDaemon
from epic.edge.sources.base import current_slot
from epic.shared.pool import ShotPool, sample_id
from tests.central.service import conftest as service_fixtures

bundle = service_fixtures.bundle
pool = service_fixtures.pool
feed = service_fixtures.feed
settings_for = service_fixtures.settings_for

FAMILY = service_fixtures.FAMILY
POOL_SIZE = service_fixtures.POOL_SIZE
RATE = 2.0  # shots per second per edge


@pytest.fixture(scope="session")
def pool_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The edges' shot-pool cache (the same pool the centre's ``feed`` uses)."""
    cache = tmp_path_factory.mktemp("edge-pool")
    ShotPool.open(FAMILY, size=POOL_SIZE, cache_dir=cache)
    return cache


def start_slot(lead_s: float = 1.0) -> int:
    """A slot ``lead_s`` from now: every edge of a test starts there."""
    return current_slot(time.time_ns(), RATE) + max(1, round(lead_s * RATE))


def sample_ids(first_slot: int, count: int) -> list[str]:
    return [sample_id(FAMILY, first_slot + k) for k in range(count)]


def edge_config(
    bundle: Path,
    url: str,
    device: str,
    slot: int,
    count: int,
    tmp: Path,
    pool_cache: Path,
    **overrides: Any,
) -> EdgeConfig:
    """Device ``device`` firing ``count`` shots from ``slot`` at ``RATE``, torch encoder."""
    base: dict[str, Any] = dict(
        bundle=bundle,
        device_id=device,
        broker=BrokerEndpoint.parse(url),
        source=f"sim:{FAMILY}",
        rate=RATE,
        runtime="torch",
        start_slot=slot,
        max_samples=count,
        pool_size=POOL_SIZE,
        cache_dir=pool_cache,
        outbox=tmp / f"outbox-{device}.sqlite",
        heartbeat_s=1.0,
        backoff_min_s=0.2,
        backoff_max_s=1.0,
    )
    return EdgeConfig(**{**base, **overrides})  # validated again, overrides and all


@contextlib.asynccontextmanager
async def edges_running(configs: Sequence[EdgeConfig]) -> AsyncIterator[list[EdgeDaemon]]:
    """Edge daemons running in this loop; ``finished(daemons)`` waits for them to end."""
    async with contextlib.AsyncExitStack() as stack:
        daemons = [await stack.enter_async_context(EdgeDaemon(c)) for c in configs]
        tasks = [asyncio.create_task(d.run(), name=f"edge-{d.config.device_id}") for d in daemons]
        try:
            yield daemons
        finally:
            for d in daemons:
                d.request_stop()
            async with asyncio.timeout(30):
                await asyncio.gather(*tasks, return_exceptions=True)


async def finished(daemons: Sequence[EdgeDaemon], timeout: float) -> None:
    """Until every daemon has produced its shots and its outbox is empty."""
    async with asyncio.timeout(timeout):
        while not all(d.stopping for d in daemons):
            await asyncio.sleep(0.1)


async def maps_for(view: Any, ids: Sequence[str], timeout: float, complete: bool = True) -> dict:
    """Each sample's newest map once all have one (with every device, if ``complete``)."""
    got: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                for sid in ids:
                    m = await view.get_map(sid)
                    if m is not None and (not complete or not m.devices_missing):
                        got[sid] = m
                if len(got) == len(ids):
                    return got
                await asyncio.sleep(0.2)
    except TimeoutError:
        missing = {sid: await view.get_map(sid) for sid in ids if sid not in got}
        raise AssertionError(
            f"{len(missing)} of {len(ids)} samples without a "
            f"{'complete ' if complete else ''}map after {timeout} s: "
            + ", ".join(
                f"{sid} ({'none' if m is None else m.devices_missing})"
                for sid, m in missing.items()
            )
        ) from None
