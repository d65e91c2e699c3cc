"""The link emulator's model and its timing, measured at a real TCP receiver: throughput,
one-way delay, the Mathis-limited rate under loss, and retransmission stalls."""

from __future__ import annotations

import asyncio
import math
import statistics

import pytest

from epic.lab.bench.link import LinkProxy
from epic.lab.bench.link_profile import LinkProfile, mathis_rate_bps
from tests.lab.bench.tcp import Sink, wait_until


def test_named_profiles_and_the_mathis_figure_for_4g() -> None:
    four_g = LinkProfile.named("4g")
    assert (four_g.rate_bps, four_g.delay_s, four_g.loss) == (15e6, 0.050, 0.005)
    # 1460 B * 8 / 0.1 s * sqrt(3/2) / sqrt(0.005) = 2.023 Mbit/s, well under 15 Mbit/s.
    assert four_g.effective_rate_bps == pytest.approx(2.023035e6, rel=1e-6)
    assert four_g.rto_s == pytest.approx(0.3)
    assert LinkProfile.named("wifi").effective_rate_bps == 300e6  # no loss: the link rate
    assert LinkProfile.named("none").effective_rate_bps is None
    assert mathis_rate_bps(0.0, 0.1) == math.inf
    # Mathis falls as 1/sqrt(p) and 1/RTT.
    assert mathis_rate_bps(0.02, 0.1) == pytest.approx(mathis_rate_bps(0.005, 0.1) / 2)
    assert mathis_rate_bps(0.005, 0.2) == pytest.approx(mathis_rate_bps(0.005, 0.1) / 2)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rate_bps": 0.0}, "rate_bps"),
        ({"rate_bps": -1e6}, "rate_bps"),
        ({"delay_s": -0.01}, "delay_s"),
        ({"loss": 1.0}, "loss"),
        ({"loss": math.nan}, "loss"),
        ({"downlink_rate_bps": math.inf}, "downlink_rate_bps"),
    ],
)
def test_bad_profile_values_are_refused_by_name(kwargs: dict, fragment: str) -> None:
    values = {"name": "x", "rate_bps": 1e6, "delay_s": 0.01, "loss": 0.0} | kwargs
    with pytest.raises(ValueError, match=fragment):
        LinkProfile(**values)
    with pytest.raises(ValueError, match="known: 4g, wifi, none"):
        LinkProfile.named("5g")


async def _send(port: int, data: bytes) -> float:
    """Connect, send ``data``, half-close; the loop time just before the first write."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    start = asyncio.get_running_loop().time()
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    return start


def test_throughput_is_the_configured_rate_within_10_percent() -> None:
    rate = 20e6
    profile = LinkProfile("test", rate_bps=rate, delay_s=0.050, loss=0.0)
    size = 2_000_000  # 0.8 s at 20 Mbit/s: long enough that scheduler jitter does not count

    async def main() -> float:
        async with asyncio.timeout(20), Sink() as sink:
            async with LinkProxy("127.0.0.1", 0, "127.0.0.1", sink.port, profile) as link:
                await _send(link.port, bytes(size))
                await wait_until(lambda: sink.total == size)
                assert link.stats().bytes_up == size
            (first, chunk), (last, _) = sink.arrivals[0], sink.arrivals[-1]
            # From the first arrival on, the rest came at the link rate (the delay drops out).
            return (size - len(chunk)) * 8 / (last - first)

    measured = asyncio.run(main())
    print(f"throughput: {measured / 1e6:.2f} Mbit/s for 20, error {measured / rate - 1:+.1%}")
    assert measured == pytest.approx(rate, rel=0.10)


def test_one_way_delay_is_the_configured_delay_within_10_percent_each_way() -> None:
    profile = LinkProfile("test", rate_bps=15e6, delay_s=0.050, loss=0.0)

    async def main() -> tuple[list[float], list[float]]:
        ups, rtts = [], []
        async with (
            asyncio.timeout(20),
            Sink(echo=True) as sink,
            LinkProxy("127.0.0.1", 0, "127.0.0.1", sink.port, profile) as link,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
            loop = asyncio.get_running_loop()
            for i in range(7):
                message = f"ping {i:011d}".encode()
                sent = loop.time()
                writer.write(message)
                assert await reader.readexactly(len(message)) == message
                rtts.append(loop.time() - sent)
                ups.append(sink.arrivals[-1][0] - sent)
            writer.close()
        return ups, rtts

    ups, rtts = asyncio.run(main())
    up, rtt = statistics.median(ups), statistics.median(rtts)
    print(f"one-way: {up * 1e3:.1f} ms for 50 ({up / 0.05 - 1:+.1%}); round trip {rtt * 1e3:.1f}")
    assert min(ups) >= 0.050  # never early
    assert up == pytest.approx(0.050, rel=0.10)
    assert rtt == pytest.approx(0.100, rel=0.10)  # the downlink carries the same delay


@pytest.mark.slow
def test_4g_loss_limits_a_bulk_upload_to_the_mathis_rate_within_10_percent() -> None:
    profile = LinkProfile.named("4g")
    expected = profile.effective_rate_bps
    assert expected is not None
    # 4.1 s at 2.02 Mbit/s: one retransmission stall (0.3 s) at the very end stays under 10 %.
    size = 1 << 20

    async def main() -> tuple[float, int]:
        async with asyncio.timeout(30), Sink() as sink:
            async with LinkProxy("127.0.0.1", 0, "127.0.0.1", sink.port, profile, seed=3) as link:
                start = await _send(link.port, bytes(size))
                await wait_until(lambda: sink.total == size, timeout=25)
                lost = link.stats().lost_segments
            return size * 8 / (sink.arrivals[-1][0] - start - profile.delay_s), lost

    measured, lost = asyncio.run(main())
    print(f"4g bulk: {measured / 1e6:.3f} Mbit/s for {expected / 1e6:.3f}, {lost} lost segments")
    assert measured == pytest.approx(expected, rel=0.10)
    assert lost > 0  # ~718 segments at 0.5 %: the stalls happened and did not slow it further


def test_a_lost_segment_delays_a_small_message_by_one_rto_repeatably() -> None:
    # 30 % loss so that a few messages show both outcomes; RTO = 10 ms RTT + 200 ms.
    profile = LinkProfile("lossy", rate_bps=None, delay_s=0.005, loss=0.3)
    count = 16

    async def delays(seed: int) -> tuple[list[float], int]:
        async with (
            Sink() as sink,
            LinkProxy("127.0.0.1", 0, "127.0.0.1", sink.port, profile, seed) as link,
        ):
            _, writer = await asyncio.open_connection("127.0.0.1", link.port)
            loop = asyncio.get_running_loop()
            found = []
            for i in range(count):
                sent = loop.time()
                writer.write(b"m%03d" % i)  # one segment each: sent after the last arrived
                await wait_until(lambda i=i: len(sink.arrivals) == i + 1)
                found.append(sink.arrivals[-1][0] - sent)
            writer.close()
            return found, link.stats().lost_segments

    async def main() -> list[tuple[list[float], int]]:
        async with asyncio.timeout(30):
            return await asyncio.gather(delays(11), delays(11))  # two proxies, same seed

    (first, lost), (second, lost_again) = asyncio.run(main())
    slow = [d > 0.1 for d in first]
    for d, is_slow in zip(first, slow, strict=True):
        # Never early; late only by scheduling jitter (loose bound: CI machines are loaded).
        expected = profile.delay_s + (profile.rto_s if is_slow else 0.0)
        assert expected <= d < expected + 0.08, first
    assert 0 < sum(slow) < count and sum(slow) == lost
    assert [d > 0.1 for d in second] == slow and lost_again == lost  # the seed repeats it
