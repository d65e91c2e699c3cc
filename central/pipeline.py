"""What happens to an arrival, in three tasks between the consumer and the outputs:

    inbox (bounded) --assemble--> ready samples wait in the assembler (bounded)
      --decode (one worker thread, batches)--> results (bounded)
      --store--> SQLite, `epic/<dep>/map/<sample>`, live events, metrics

``assemble`` is the one task that handles both arrivals and every deadline (it sleeps until
the earliest one, or the next arrival). ``decode`` takes what is ready when the decoder is
free, so samples that became ready together are decoded as one batch, and a slow decode only
lets the assembler's buffer fill (and evict, counted); the consumer keeps reading.

With ``pending`` (``epic.central.pending``) the pipeline says when a latent's kept row may go:
once a map that used it is stored, or once it is decided it never will be (late, or its
sample dropped). Until then a restart brings it back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from epic.central.assembler import Assembler, Outcome
from epic.central.devices import DeviceRegistry
from epic.central.events import EventHub
from epic.central.pending import PendingLatents
from epic.central.prometheus import Metrics
from epic.central.ratelimit import RateLimitedLog
from epic.central.schemas import MapEvent
from epic.central.store import MapStore
from epic.central.summary import summary_of
from epic.central.validate import Arrival, Rejected
from epic.shared.wire import map_topic

if TYPE_CHECKING:  # torch: the service imports it off the event loop (central.service)
    from epic.central.decoder import DecodedMap, Decoder

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)

INBOX_BOUND = 1024  # arrivals between the read loop and the assembler
RESULTS_BOUND = 64  # decoded maps waiting for the store


class Pipeline:
    def __init__(
        self,
        assembler: Assembler,
        decoder: Decoder,
        store: MapStore,
        registry: DeviceRegistry,
        hub: EventHub,
        metrics: Metrics,
        *,
        deployment: str,
        model_hash: str,
        batch_max: int,
        pending: PendingLatents | None = None,
        publish: Callable[[str, bytes], None] = lambda topic, payload: None,
    ) -> None:
        """``pending``: the kept latents to release as maps are stored (None: none kept);
        ``publish``: sends a map's summary to the broker (the consumer's, built after this)."""
        self.assembler, self.decoder, self.store = assembler, decoder, store
        self.registry, self.hub, self.metrics = registry, hub, metrics
        self.deployment, self.model_hash, self.batch_max = deployment, model_hash, batch_max
        self.publish = publish
        self.pending = pending
        self.inbox: asyncio.Queue[Arrival] = asyncio.Queue(INBOX_BOUND)
        self.results: asyncio.Queue[DecodedMap | None] = asyncio.Queue(RESULTS_BOUND)
        self.ready = asyncio.Event()
        self.stopping = False
        self.maps_decoded = 0
        self.dropped: dict[str, int] = {}
        self._warn = RateLimitedLog(log)
        assembler.on_drop = self.on_drop

    # -- assemble -------------------------------------------------------------------------
    async def assemble(self) -> None:
        a = self.assembler
        while True:
            deadline = a.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - a.clock.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    arrival = await self.inbox.get()
                self.accept(arrival)
                for _ in range(INBOX_BOUND):  # what else is already there, without waiting
                    if self.inbox.empty():
                        break
                    self.accept(self.inbox.get_nowait())
            except TimeoutError:
                pass
            a.expire()
            if a.ready_count:
                self.ready.set()
            self.metrics.buffer_depth.set(a.depth)

    def accept(self, arrival: Arrival) -> None:
        self.registry.latent(arrival)
        outcome = self.assembler.add(arrival)
        device = self.registry.resolve(arrival.device_id)
        if outcome is Outcome.DUPLICATE:
            self.registry.duplicate(device)
            self.metrics.duplicates.labels(device).inc()
        elif outcome in (Outcome.LATE, Outcome.REFINE):
            self.registry.late_latent(device)
            self.metrics.late.labels(device).inc()
            if outcome is Outcome.LATE and self.pending is not None:
                self.pending.forget(arrival.sample_id, arrival.device_id)  # never used

    # -- decode ---------------------------------------------------------------------------
    async def decode(self) -> None:
        """Until ``stopping``; a batch in flight then finishes and reaches the store."""
        while not self.stopping:
            await self.ready.wait()
            self.ready.clear()
            while not self.stopping and (batch := self.assembler.take_ready(self.batch_max)):
                try:
                    maps = await self.decoder.decode(batch)
                except Exception:
                    log.exception("decoding %d samples failed; they are dropped", len(batch))
                    for sample in batch:
                        self.on_drop(sample.sample_id, "decode-error", sample.devices_used)
                    continue
                self.assembler.t_dec_ms = self.decoder.p95_ms
                seconds = (maps[0].decode_end_ns - maps[0].decode_start_ns) / 1e9
                self.metrics.decode.labels(self.metrics.batch_label(len(batch))).observe(seconds)
                for decoded in maps:
                    await self.results.put(decoded)

    # -- store and tell -------------------------------------------------------------------
    async def store_maps(self) -> None:
        """Until it takes ``None`` from ``results``."""
        while (decoded := await self.results.get()) is not None:
            summary = summary_of(decoded, self.deployment, self.model_hash)
            summary = await self.store.save(summary, decoded.velocity)
            if self.pending is not None and self.store.healthy:
                # Only once the map is on disk (a failing store keeps it in memory, and a
                # crash would lose it): then its latents' rows go, for this version's devices
                # (a late latent waiting for the next version keeps its row).
                self.pending.used(summary.sample_id, summary.devices_used)
            self.maps_decoded += 1
            m = self.metrics
            m.maps.labels(str(summary.partial).lower(), str(summary.version > 1).lower()).inc()
            if summary.timings.end_to_end_ms is not None:
                m.end_to_end.observe(max(0.0, summary.timings.end_to_end_ms / 1e3))
            self.hub.publish(MapEvent(map=summary).model_dump(mode="json"))
            topic = str(map_topic(self.deployment, summary.sample_id))
            self.publish(topic, summary.model_dump_json().encode())

    # -- counted, never raised ------------------------------------------------------------
    def on_reject(self, rejected: Rejected) -> None:
        device = self.registry.rejected(rejected.device, rejected.reason)
        self.metrics.rejected.labels(device, rejected.reason).inc()
        self._warn.warning(rejected.reason, "rejected a message from %s: %s", device, rejected)

    def on_drop(self, sample_id: str, reason: str, devices: list[str]) -> None:
        if self.pending is not None:
            self.pending.forget(sample_id)  # decided: a restart must not decode it after all
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.metrics.dropped.labels(reason).inc()
        missing = [d for d in self.assembler.devices if d not in devices]
        if reason == "too-few-devices" and missing and all(map(self.registry.stopped, missing)):
            # The devices it lacks were stopped on purpose (the end of a run, say): what
            # they did not send is expected, not a fault to warn about. Still counted.
            log.info(
                "sample %s not decoded: %s stopped (devices in: %s)",
                sample_id,
                ", ".join(missing),
                ", ".join(devices) or "none",
            )
            return
        self._warn.warning(
            f"drop-{reason}",
            "sample %s dropped (%s; devices in: %s)",
            sample_id,
            reason,
            ", ".join(devices) or "none",
        )
