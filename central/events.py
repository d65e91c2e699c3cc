"""Live events (decoded maps, device changes) fanned out to every subscriber, bounded.

Each subscriber has its own queue of ``queue_size`` events. Publishing never waits: when a
subscriber's queue is full it is dropped (its iterator ends after what it had already
read, and ``dropped`` counts it), because buffering for a client that does not read would
grow without bound. A dropped client reconnects and starts from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

__all__ = ["EventHub"]

_END = None  # the sentinel that ends a subscriber's iterator


class _Subscriber:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue(size)
        self.closed = False

    def close(self) -> None:
        """End the iterator now: what was queued is thrown away, the sentinel fits."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(_END)

    async def events(self) -> AsyncIterator[dict]:
        while (event := await self.queue.get()) is not _END:
            yield event


class EventHub:
    def __init__(self, queue_size: int = 64, on_drop: Callable[[], None] | None = None) -> None:
        self.queue_size = queue_size
        self.dropped = 0
        self.on_drop = on_drop or (lambda: None)
        self._subscribers: set[_Subscriber] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, event: dict) -> None:
        for sub in list(self._subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(sub)
                sub.close()
                self.dropped += 1
                self.on_drop()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[dict]]:
        """``async with hub.subscribe() as events: async for event in events: ...``"""
        sub = _Subscriber(self.queue_size)
        self._subscribers.add(sub)
        try:
            yield sub.events()
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscriber's iterator (the service is stopping)."""
        for sub in list(self._subscribers):
            sub.close()
        self._subscribers.clear()
