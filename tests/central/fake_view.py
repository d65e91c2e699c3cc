"""An in-memory ``CentralView`` for unit tests of the API and the page: plain data at the edge
of the test, no broker, model or database. Tests change it from their own thread
(``add_map``, ``set_device``); subscribers, which live on the server's event loop, are
reached thread-safely."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from epic.central.schemas import DeviceEvent, DeviceHealth, Health, MapDetail, MapEvent, MapTimings

DEVICE_IDS = [f"dev-{i}" for i in range(5)]


def layered_velocity(seed: int = 0, nz: int = 70, nx: int = 70) -> np.ndarray:
    """A plausible map in m/s: layers getting faster with depth, offset by a dipping fault."""
    rng = np.random.default_rng(seed)
    depth = np.arange(nz)[:, None] * np.ones((1, nx))
    fault_x = rng.integers(20, 50)
    throw = rng.integers(4, 12)
    shifted = np.where(np.arange(nx)[None, :] > fault_x + depth / 3, depth - throw, depth)
    layers = np.floor(np.clip(shifted, 0, nz - 1) / (nz / 6))
    return (1500.0 + layers * 550.0).astype(np.float32)


def make_map(
    sample_id: str,
    *,
    version: int = 1,
    missing: Sequence[str] = (),
    decoded_ns: int | None = None,
    end_to_end_ms: float | None = 180.0,
    ssim: float | None = None,
    seed: int = 0,
) -> MapDetail:
    velocity = layered_velocity(seed)
    end = decoded_ns if decoded_ns is not None else time.time_ns()
    e2e_ns = int((end_to_end_ms or 0) * 1e6)
    return MapDetail(
        sample_id=sample_id,
        version=version,
        partial=bool(missing),
        devices_used=[d for d in DEVICE_IDS if d not in missing],
        devices_missing=list(missing),
        model_hash="0123abcd",
        deployment="test-dep",
        timings=MapTimings(
            acquired_ns=end - e2e_ns if end_to_end_ms is not None else None,
            first_arrival_ns=end - 60_000_000,
            last_arrival_ns=end - 30_000_000,
            decode_start_ns=end - 25_000_000,
            decode_end_ns=end,
            stored_ns=end,
            decode_ms=25.0,
            end_to_end_ms=end_to_end_ms,
        ),
        velocity_min=float(velocity.min()),
        velocity_max=float(velocity.max()),
        velocity_mean=float(velocity.mean()),
        ssim=ssim,
        velocity=velocity.tolist(),
    )


def make_device(device_id: str, *, online: bool = True, late: bool = False) -> DeviceHealth:
    return DeviceHealth(
        id=device_id,
        online=online,
        status="online" if online else "offline",
        late=late,
        last_seen_ns=time.time_ns(),
        latents_received=42,
        rejected={"bad_crc": 2, "stale_model": 1},
        late_latents=1,
        duplicates=3,
        arrival_delay_ms_p50=12.5,
        arrival_delay_ms_p95=48.0,
        heartbeat={
            "encode_ms_p50": 7.1,
            "encode_ms_p95": 11.9,
            "outbox_depth": 0,
            "outbox_bytes": 0,
            "dropped": 0,
            "reconnects": 1,
        },
    )


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict | None]
    dropped: bool = False

    def offer(self, events: list[dict]) -> None:
        """On the subscriber's loop: queue events, or drop a subscriber that is full."""
        for event in events:
            if self.dropped:
                return
            if self.queue.full():
                self.end()
                return
            self.queue.put_nowait(event)

    def end(self) -> None:
        """On the subscriber's loop: drop what is queued and end the feed."""
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass
class FakeView:
    """Implements ``epic.central.view.CentralView`` over lists in memory."""

    deployment: str = "test-dep"
    queue_size: int = 16
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)
    broker_connected: bool = True
    _maps: list[MapDetail] = field(default_factory=list)  # in store order
    truths: dict[str, np.ndarray] = field(default_factory=dict)  # sample id -> true map
    _devices: dict[str, DeviceHealth] = field(default_factory=dict)
    _subs: dict[int, _Subscriber] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rejected = Counter(
            "epic_latents_rejected",
            "latents rejected, by reason",
            ["reason"],
            registry=self.metrics,
        )
        self.decode_seconds = Histogram("epic_decode_seconds", "decode time", registry=self.metrics)
        self.rejected.labels(reason="bad_crc").inc(2)
        self.decode_seconds.observe(0.025)

    # ---- the CentralView protocol ----

    async def latest_map(self) -> MapDetail | None:
        with self._lock:
            if not self._maps:
                return None
            return max(self._maps, key=lambda m: m.timings.decode_end_ns)

    async def get_map(self, sample_id: str, version: int | None = None) -> MapDetail | None:
        with self._lock:
            found = [m for m in self._maps if m.sample_id == sample_id]
        if version is not None:
            found = [m for m in found if m.version == version]
        return max(found, key=lambda m: m.version, default=None)

    async def list_maps(self, limit: int, before: str | None = None) -> list[MapDetail]:
        with self._lock:
            maps = list(reversed(self._maps))
        if before is not None:
            index = next((i for i, m in enumerate(maps) if m.sample_id == before), None)
            maps = [] if index is None else maps[index + 1 :]
        return maps[:limit]

    async def truth(self, sample_id: str) -> np.ndarray | None:
        return self.truths.get(sample_id)

    def devices(self) -> list[DeviceHealth]:
        with self._lock:
            return list(self._devices.values())

    def health(self) -> Health:
        return Health(
            status="ok" if self.broker_connected else "degraded",
            deployment=self.deployment,
            model="epic-lite-5",
            model_hash="0123abcd",
            broker_connected=self.broker_connected,
            buffer_depth=1,
            decode_queue_depth=0,
            decode_ms_p50=20.0,
            decode_ms_p95=31.0,
            maps_stored=len(self._maps),
            uptime_s=12.0,
            rejected={"bad_crc": 2},
        )

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[dict]]:
        sub = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(self.queue_size))
        with self._lock:
            self._subs[id(sub)] = sub
        try:
            yield self._feed(sub)
        finally:
            with self._lock:
                self._subs.pop(id(sub), None)

    @staticmethod
    async def _feed(sub: _Subscriber) -> AsyncIterator[dict]:
        while (event := await sub.queue.get()) is not None:
            yield event

    # ---- the test's side; any thread ----

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)

    def add_map(self, detail: MapDetail) -> None:
        with self._lock:
            self._maps.append(detail)
        summary = detail.model_dump(mode="json", exclude={"velocity"})
        self.publish(MapEvent.model_validate({"map": summary}).model_dump(mode="json"))

    def set_device(self, device: DeviceHealth) -> None:
        with self._lock:
            self._devices[device.id] = device
        self.publish(DeviceEvent(device=device).model_dump(mode="json"))

    def publish(self, *events: dict) -> None:
        """All ``events`` reach each subscriber in one step of its loop (so a burst bigger
        than its queue drops it deterministically)."""
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            sub.loop.call_soon_threadsafe(sub.offer, list(events))

    def drop_subscribers(self) -> None:
        """End every live feed, as the service does to clients that fall behind."""
        with self._lock:
            subs = list(self._subs.values())
        for sub in subs:
            sub.loop.call_soon_threadsafe(sub.end)
