"""The edge daemon: one device's source, encoder, outbox and MQTT link as one object.

``async with EdgeDaemon(config) as daemon: await daemon.run()``. Entering loads the device's
encoder, opens the source and the outbox (each in a worker thread: a first ``sim:`` start
simulates the shot pool). ``run()`` runs the producer and the publisher until
``request_stop()`` (SIGINT/SIGTERM in ``run_edge``), or until the source is exhausted or
``max_samples`` are produced *and* the outbox has drained. Stopping cancels the producer
(the outbox is already on disk), says offline and disconnects; leaving the block closes the
files. ``run_edge(config)`` is the whole process: signals, logging, exit code.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from types import TracebackType
from typing import Self

from epic import __version__
from epic.edge.config import EdgeConfig
from epic.edge.encoder_runtime import EncoderRuntime
from epic.edge.health import EdgeStats, StatusInfo
from epic.edge.outbox import Outbox, default_outbox_path
from epic.edge.producer import Producer
from epic.edge.publisher import Publisher
from epic.edge.sources import Source, open_source
from epic.edge.sources.base import Clock
from epic.shared.manifest import DeviceEntry, Manifest, load_manifest

__all__ = ["EdgeDaemon", "run_edge"]

log = logging.getLogger(__name__)
_STOP_TIMEOUT_S = 15.0


class EdgeDaemon:
    def __init__(self, config: EdgeConfig, *, clock: Clock = time.time_ns) -> None:
        self.config = config
        self.stats = EdgeStats()
        self._clock = clock
        self._stop = asyncio.Event()
        self.manifest: Manifest | None = None
        self.device: DeviceEntry | None = None
        self.runtime: EncoderRuntime | None = None
        self.source: Source | None = None
        self.outbox: Outbox | None = None
        self.producer: Producer | None = None
        self.publisher: Publisher | None = None

    async def __aenter__(self) -> Self:
        c = self.config
        try:
            self.manifest = await asyncio.to_thread(load_manifest, c.bundle)
            self.device = self.manifest.device(c.device_id)
            if c.mode == "latent":
                self.runtime = await asyncio.to_thread(
                    EncoderRuntime.load, c.bundle, c.device_id, c.runtime, c.threads
                )
            self.source = await asyncio.to_thread(
                open_source,
                c.source,
                self.device.receivers,
                c.rate,
                start_slot=c.start_slot,
                pool_size=c.pool_size,
                pool_seed=c.pool_seed,
                cache_dir=c.cache_dir,
                progress=c.progress,
                clock=self._clock,
            )
            path = c.outbox or default_outbox_path(self.manifest.deployment, self.device.id)
            self.outbox = await Outbox.open(path, c.outbox_bytes)
        except BaseException:
            await self._close()
            raise
        info = StatusInfo(
            deployment=self.manifest.deployment,
            device_id=self.device.id,
            bundle_hash=self.manifest.model_hash,
            software=__version__,
            receivers=self.device.receivers,
            mode=c.mode,
            runtime=self.runtime.kind if self.runtime else "none",
            since_ns=self.stats.started_ns,
            source=self.source.describe(),
        )
        source = self.source
        self.producer = Producer(
            self.manifest,
            self.device,
            source,
            self.runtime,
            self.outbox,
            self.stats,
            c.wire_dtype,
            c.compress,
            c.max_samples,
        )
        self.publisher = Publisher(c, info, self.outbox, self.stats, lambda: source.skipped)
        log.info(
            "edge %s of %s: receivers %d-%d, %s mode (%s), source %s, outbox %s (%d waiting)",
            self.device.id,
            self.manifest.deployment,
            self.device.receivers[0],
            self.device.receivers[1] - 1,
            c.mode,
            info.runtime,
            c.source,
            self.outbox.path,
            self.outbox.depth,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        if self.producer is not None:
            await asyncio.to_thread(self.producer.close)
        if self.source is not None:
            self.source.close()
        if self.outbox is not None:
            await self.outbox.close()

    def request_stop(self) -> None:
        """Ask the daemon to stop (safe from a signal handler on the loop)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        assert self.producer is not None and self.publisher is not None
        assert self.outbox is not None
        async with asyncio.TaskGroup() as tg:
            producer = tg.create_task(self._produce_then_finish(), name="producer")
            publisher = tg.create_task(self.publisher.run(self._stop), name="publisher")
            await self._stop.wait()
            producer.cancel()
            # The publisher says goodbye and returns; bounded, should the broker hang.
            try:
                async with asyncio.timeout(_STOP_TIMEOUT_S):
                    await asyncio.shield(publisher)
            except TimeoutError:
                log.warning("publisher did not stop within %.0f s; cancelling", _STOP_TIMEOUT_S)
                publisher.cancel()
        log.info(
            "stopped: %d samples encoded, %d envelopes sent, %d waiting in the outbox",
            self.stats.samples_encoded,
            self.stats.envelopes_sent,
            self.outbox.depth,
        )

    async def _produce_then_finish(self) -> None:
        assert self.producer is not None and self.outbox is not None
        await self.producer.run()
        log.info("produced %d samples; waiting for the outbox to drain", self.producer.produced)
        await self.outbox.empty.wait()
        self._stop.set()


def run_edge(config: EdgeConfig) -> int:
    """Run one edge daemon in this process until a signal or the end; returns the exit code."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Signals reach only the main thread; embedded in another thread, the host stops us.
        signals = [signal.SIGINT, signal.SIGTERM]
        if threading.current_thread() is not threading.main_thread():
            signals = []
        async with EdgeDaemon(config) as daemon:
            # The handlers only set a flag; shutdown runs in the main flow (uvicorn's habit).
            for signum in signals:
                loop.add_signal_handler(signum, daemon.request_stop)
            try:
                await daemon.run()
            finally:
                for signum in signals:
                    loop.remove_signal_handler(signum)

    asyncio.run(main())
    return 0
