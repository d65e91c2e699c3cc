"""The producer: source -> (encoder) -> envelope -> outbox, one sample at a time.

Slots are planned on the event loop (cheap) and waited for with ``asyncio.sleep``; reading,
normalizing, encoding and packing run on one dedicated worker thread (never on the loop,
and always the same thread for the encoder's sake). A sample that cannot be used (bad data,
a latent that will not pack) is logged, counted and skipped; it never stops the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from epic.edge.encoder_runtime import EncoderRuntime
from epic.edge.health import EdgeStats
from epic.edge.outbox import Outbox
from epic.edge.sources import Slot, Source
from epic.shared.errors import DataError
from epic.shared.manifest import DeviceEntry, Manifest
from epic.shared.wire import Envelope, EnvelopeError, envelope_topic, pack

__all__ = ["Packed", "Producer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Packed:
    topic: str
    payload: bytes
    acquired_ns: int
    encode_ms: float | None


class Producer:
    def __init__(
        self,
        manifest: Manifest,
        device: DeviceEntry,
        source: Source,
        runtime: EncoderRuntime | None,  # None: raw mode
        outbox: Outbox,
        stats: EdgeStats,
        dtype: str,
        compress: str,
        max_samples: int | None = None,
    ) -> None:
        self.manifest = manifest
        self.device = device
        self.source = source
        self.runtime = runtime
        self.outbox = outbox
        self.stats = stats
        self.dtype = dtype
        self.compress = compress
        self.max_samples = max_samples
        self.mode = "raw" if runtime is None else "latent"
        self.produced = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="encoder")

    def make(self, slot: Slot) -> Packed:
        """Read, encode and pack one slot's shot (blocking: the worker thread's job)."""
        started = time.perf_counter()
        shot = self.source.read(slot)
        encode_ms = None
        if self.runtime is None:
            data = shot.waveforms
        else:
            t = time.perf_counter()
            data = self.runtime.encode(shot.waveforms)
            encode_ms = (time.perf_counter() - t) * 1e3
        envelope = Envelope(
            deployment=self.manifest.deployment,
            sample_id=shot.sample_id,
            device_id=self.device.id,
            model_hash=self.manifest.model_hash,
            acquired_ns=shot.acquired_ns,
            encode_us=min(int((time.perf_counter() - started) * 1e6), 2**32 - 1),
            data=data,
        )
        payload = pack(envelope, self.dtype, self.compress)  # checks the ids the topic holds
        where = (self.manifest.deployment, self.mode, shot.sample_id, self.device.id)
        topic = str(envelope_topic(*where))
        return Packed(topic, payload, shot.acquired_ns, encode_ms)

    async def run(self) -> None:
        """Produce until the source ends or ``max_samples`` are queued (or cancelled)."""
        loop = asyncio.get_running_loop()
        slots = self.source.slots()
        while self.max_samples is None or self.produced < self.max_samples:
            slot = next(slots, None)
            if slot is None:
                log.info("source %s exhausted after %d samples", self.source.spec, self.produced)
                return
            wait_s = (slot.due_ns - time.time_ns()) / 1e9
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            try:
                packed = await loop.run_in_executor(self._executor, self.make, slot)
            except (DataError, EnvelopeError, OSError) as exc:
                # Unusable input (or a read that failed): skip it, keep the stream going.
                self.stats.samples_rejected += 1
                log.warning("sample %s skipped: %s", slot.sample_id, exc)
                continue
            await self.outbox.append(packed.topic, packed.payload, packed.acquired_ns)
            self.produced += 1
            self.stats.samples_encoded += 1
            if packed.encode_ms is not None:
                self.stats.encode_ms.append(packed.encode_ms)

    def close(self) -> None:
        # Waits for at most the one sample in flight (milliseconds).
        self._executor.shutdown(wait=True)
