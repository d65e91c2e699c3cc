"""10,000 bad messages published to a running centre through a real broker: random bytes,
truncations, bit flips, nonsense headers and huge shapes, NaN/inf latents in float16 and
float32, bad and mismatched ids, future timestamps, other deployments and models, zstd bombs,
oversize payloads, broken status and heartbeat JSON; 8,000 from a seeded RNG mutating real
envelopes, 2,000 drawn by hypothesis. Zero crashes, every one counted under a reason (the
counters add up to exactly what was sent), and the good samples published in between all
decode, complete and identical to a clean decode of the same shot."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import aiomqtt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from epic.central.schemas import MapDetail
from epic.central.service import CentralService
from epic.central.validate import Rejected, Validator
from tests.central.service.conftest import Feed
from tests.support.brokers import BrokerProcess

from .garbage import garbage, hypothesis_messages

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TOTAL = 10_000
FROM_HYPOTHESIS = 2_000
MAX_BYTES = 64 * 1024
PUBLISHERS = 8


def drawn_by_hypothesis(deployment: str, count: int) -> list[tuple[str, bytes]]:
    """``count`` messages from hypothesis, 50 per example (a quick, derandomized run)."""
    out: list[tuple[str, bytes]] = []

    @settings(
        max_examples=count // 50,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(hypothesis_messages(deployment), min_size=50, max_size=50))
    def draw(batch: list[tuple[str, bytes]]) -> None:
        out.extend(batch)

    draw()
    return out[:count]


async def publish_many(url: str, messages: Sequence[tuple[str, bytes]]) -> None:
    """QoS 1, ``PUBLISHERS`` connections side by side."""
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)

    async def one(k: int) -> None:
        async with aiomqtt.Client(host, int(port), identifier=f"fuzz-{k}", timeout=30) as c:
            for topic, payload in messages[k::PUBLISHERS]:
                await c.publish(topic, payload, qos=1)

    await asyncio.gather(*(one(k) for k in range(PUBLISHERS)))


def test_ten_thousand_bad_messages_are_all_counted_and_good_maps_are_untouched(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    bad = garbage(feed, TOTAL - FROM_HYPOTHESIS) + drawn_by_hypothesis(
        feed.deployment, FROM_HYPOTHESIS
    )
    # The same checks as the centre's, here: each message is bad, and for what reason.
    validator = Validator(feed.manifest, raw_supported=False, max_envelope_bytes=MAX_BYTES)
    expected: Counter[str] = Counter()
    for topic, payload in bad:
        try:
            validator.message(topic, payload)
        except Rejected as rejected:
            expected[rejected.reason] += 1
        else:
            pytest.fail(f"a 'bad' message is valid: {topic} {payload[:40]!r}")
    assert sum(expected.values()) == TOTAL and len(expected) >= 20, expected
    good_slots = [3 * k for k in range(1, 11)]  # pool slot 0 again and again: one shot

    async def main() -> None:
        settings = settings_for(
            bundle, embedded_broker.url, max_envelope_bytes=MAX_BYTES, deadline_ms=1000
        )
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            await publish_many(embedded_broker.url, [feed.message(0, d) for d in feed.devices])
            reference = await wait_map(svc, feed.sample_id(0))
            chunks = np.array_split(np.arange(TOTAL), len(good_slots))
            for slot, chunk in zip(good_slots, chunks, strict=True):
                await publish_many(embedded_broker.url, [bad[i] for i in chunk])
                await publish_many(
                    embedded_broker.url, [feed.message(slot, d) for d in feed.devices]
                )
            async with asyncio.timeout(60):
                while sum(svc.health().rejected.values()) < TOTAL:
                    await asyncio.sleep(0.2)
            maps = [await wait_map(svc, feed.sample_id(s)) for s in good_slots]
            await asyncio.sleep(1.0)  # nothing more trickles in
            health = svc.health()
            assert not svc._failed.is_set() and health.broker_connected
        assert health.rejected == dict(expected)  # each counted once, under its reason
        assert health.samples_dropped == {} and health.maps_stored == 1 + len(good_slots)
        for m in maps:
            assert not m.partial and m.devices_used == feed.devices and m.version == 1
            np.testing.assert_allclose(m.velocity, reference.velocity, atol=0.5)

    asyncio.run(main())


async def wait_map(svc: CentralService, sample: str, timeout: float = 30.0) -> MapDetail:
    async with asyncio.timeout(timeout):
        while (m := await svc.get_map(sample)) is None:
            await asyncio.sleep(0.05)
    return m
