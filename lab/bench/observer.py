"""The benchmark's eyes on the broker: an MQTT client that records what every part sends.

It subscribes directly to the broker (never through a link proxy) on ``epic/<dep>/#`` at
QoS 0: QoS 0 because amqtt 0.12 mis-delivers QoS 1 to a second subscriber of the same
messages (found by the edge work), and a loopback subscriber loses nothing anyway. For
each envelope (``latent/`` or ``raw/``) it notes the arrival time (UTC ns, the same clock
as every other part on this machine) and unpacks the header for the acquisition time and
the edge's encode time; for each map summary the centre publishes (``map/<sample>``) it
keeps the centre's own timings and SSIM; for ``status/`` it keeps who is online.

It runs its own event loop in a thread, so the harness's main flow (which starts and
stops processes and draws progress bars) stays plain blocking code. A payload that does
not parse is counted and logged, never raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass

__all__ = ["EnvelopeRecord", "MapRecord", "Observer", "map_record"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class EnvelopeRecord:
    """One device's envelope for one sample, as the observer saw it arrive."""

    sample_id: str
    device_id: str
    kind: str  # "latent" or "raw"
    acquired_ns: int
    encode_us: int
    arrival_ns: int
    wire_bytes: int  # the envelope (MQTT payload) only
    topic_bytes: int = 0  # its topic's length, for the PUBLISH packet's size


@dataclass(frozen=True)
class MapRecord:
    """One decoded map, with the centre's own timestamps (UTC ns)."""

    sample_id: str
    version: int
    partial: bool
    devices_used: tuple[str, ...]
    acquired_ns: int | None
    first_arrival_ns: int
    last_arrival_ns: int
    decode_start_ns: int
    decode_end_ns: int
    stored_ns: int | None
    ssim: float | None


def map_record(summary: dict) -> MapRecord:
    """A map summary (MQTT ``map/`` payload or a REST list item) as a record."""
    t = summary["timings"]
    return MapRecord(
        sample_id=summary["sample_id"],
        version=int(summary["version"]),
        partial=bool(summary["partial"]),
        devices_used=tuple(summary["devices_used"]),
        acquired_ns=t.get("acquired_ns"),
        first_arrival_ns=int(t["first_arrival_ns"]),
        last_arrival_ns=int(t["last_arrival_ns"]),
        decode_start_ns=int(t["decode_start_ns"]),
        decode_end_ns=int(t["decode_end_ns"]),
        stored_ns=t.get("stored_ns"),
        ssim=summary.get("ssim"),
    )


class Observer:
    """``start()`` connects and subscribes (raises if it cannot); ``stop()`` disconnects.

    ``envelopes=False`` leaves the latent and raw topics out (the throughput runs, where
    only maps count and thousands of envelopes would cost the harness CPU)."""

    def __init__(self, host: str, port: int, deployment: str, *, envelopes: bool = True) -> None:
        self.host, self.port, self.deployment = host, port, deployment
        self.with_envelopes = envelopes
        self.envelopes: list[EnvelopeRecord] = []
        self.maps: dict[tuple[str, int], MapRecord] = {}
        self.online: dict[str, bool] = {}
        self.online_since_ns: dict[str, int] = {}
        self.malformed = 0
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="bench-observer", daemon=True)

    # -- control (any thread) -------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(CONNECT_TIMEOUT_S + 5):
            raise RuntimeError(f"observer: no connection to {self.host}:{self.port}")
        if self._error is not None:
            raise RuntimeError(f"observer: {self._error}") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def map_ids(self) -> set[str]:
        with self._lock:
            return {sid for sid, _ in self.maps}

    def online_devices(self) -> set[str]:
        with self._lock:
            return {d for d, up in self.online.items() if up}

    def snapshot(self) -> tuple[list[EnvelopeRecord], list[MapRecord]]:
        with self._lock:
            return list(self.envelopes), list(self.maps.values())

    # -- the observer's thread ------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            self._ready.set()

    async def _run(self) -> None:
        import aiomqtt

        from epic.shared.wire import LATENT, MAP, RAW, STATUS, topic_filter

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        kinds = [MAP, STATUS] + ([LATENT, RAW] if self.with_envelopes else [])
        topics = [str(topic_filter(self.deployment, kind)) for kind in kinds]
        quiet = logging.getLogger("bench.observer.mqtt")
        quiet.setLevel(logging.ERROR)
        async with aiomqtt.Client(
            self.host,
            self.port,
            identifier=f"bench-observer-{self.deployment}",
            timeout=CONNECT_TIMEOUT_S,
            logger=quiet,
            max_queued_incoming_messages=100_000,
        ) as client:
            for topic in topics:
                await client.subscribe(topic, qos=0)
            self._ready.set()
            reader = asyncio.create_task(self._read(client))
            await self._stop.wait()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read(self, client: object) -> None:
        async for message in client.messages:  # type: ignore[attr-defined]
            arrival_ns = time.time_ns()
            try:
                self._record(str(message.topic), bytes(message.payload), arrival_ns)
            except Exception as exc:  # a bad payload is counted, never the end of the run
                self.malformed += 1
                log.warning("observer: dropped a message on %s: %s", message.topic, exc)

    def _record(self, topic: str, payload: bytes, arrival_ns: int) -> None:
        from epic.shared.wire import LATENT, MAP, RAW, STATUS, parse_topic, unpack

        where = parse_topic(topic, check_ids=False)  # a malformed topic raises TopicError
        kind = where.kind
        if kind in (LATENT, RAW):
            env = unpack(payload)
            record = EnvelopeRecord(
                env.sample_id,
                env.device_id,
                kind,
                env.acquired_ns,
                env.encode_us,
                arrival_ns,
                len(payload),
                len(topic.encode()),
            )
            with self._lock:
                self.envelopes.append(record)
        elif kind == MAP:
            record_map = map_record(json.loads(payload))
            with self._lock:
                self.maps[(record_map.sample_id, record_map.version)] = record_map
        elif kind == STATUS and where.device is not None:
            up = bool(json.loads(payload).get("online")) if payload else False
            with self._lock:
                if up and not self.online.get(where.device):
                    self.online_since_ns[where.device] = arrival_ns
                self.online[where.device] = up
        else:
            raise ValueError("not a topic the observer reads")
