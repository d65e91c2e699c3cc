"""The live feed is bounded: a subscriber that does not read is dropped, others go on."""

from __future__ import annotations

import asyncio

from epic.central.events import EventHub


def test_slow_subscriber_is_dropped_and_a_reader_keeps_everything() -> None:
    async def main() -> None:
        drops: list[int] = []
        hub = EventHub(queue_size=4, on_drop=lambda: drops.append(1))
        async with hub.subscribe() as slow, hub.subscribe() as fast:
            got: list[dict] = []
            for k in range(10):
                hub.publish({"n": k})
                got.append(await anext(fast))  # reads as it goes
            assert [e["n"] for e in got] == list(range(10))
            assert hub.dropped == 1 and drops == [1] and hub.subscribers == 1
            async with asyncio.timeout(1):
                left = [e async for e in slow]
            assert left == []  # dropped: its iterator ends, nothing buffered for it
        assert hub.subscribers == 0

    asyncio.run(main())


def test_close_ends_every_iterator() -> None:
    async def main() -> None:
        hub = EventHub()
        async with hub.subscribe() as events:
            hub.publish({"n": 1})
            hub.close()
            async with asyncio.timeout(1):
                assert [e async for e in events] == []

    asyncio.run(main())
