"""The centre, wired: consumer -> assembler -> decoder -> store -> API, MQTT and live events.

``async with CentralService(settings) as service:`` loads the bundle, opens the store,
profiles the decoder, connects to the broker and serves the API; leaving the block (or
``stop()``) shuts down in order: stop reading the broker, let the decode in flight finish
and its maps be stored, save device health, close the store, stop the HTTP server. The
service is the API's ``CentralView``.

Tasks, each bounded by a queue or by the assembler's buffer:

    consumer --inbox (bounded)--> assemble (one task: arrivals and every deadline)
      --ready samples wait in the assembler--> decode (one worker thread, batches)
      --results (bounded)--> store + publish `epic/<dep>/map/<sample>` + live events
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Self

from central.assembler import Assembler, Clock, Outcome
from central.consumer import Consumer
from central.decoder import DecodedMap, Decoder, DecoderRuntime
from central.devices import DeviceRegistry
from central.events import EventHub
from central.metrics import Metrics
from central.ratelimit import RateLimitedLog
from central.schemas import DeviceEvent, DeviceHealth, Health, MapDetail, MapEvent, MapSummary
from central.settings import CentralSettings
from central.store import MapStore
from central.summary import summary_of
from central.truth import Truth, open_truth
from central.validate import Arrival, DeviceReport, Rejected, Validator
from central.webserver import HttpServer
from shared.bundle import encoder_has_weights, load_central_model
from shared.data.errors import DataError

__all__ = ["CentralService"]

log = logging.getLogger(__name__)

INBOX_BOUND = 1024  # arrivals between the read loop and the assembler
RESULTS_BOUND = 64  # decoded maps waiting for the store
DEVICES_SAVE_S = 5.0
STOP_DECODE_S = 30.0


class CentralService:
    def __init__(
        self, settings: CentralSettings, truth: Truth | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self._truth = truth
        self._clock = clock
        self.instruments = Metrics()
        self.metrics = self.instruments.registry
        self.hub = EventHub(on_drop=self.instruments.subscribers_dropped.inc)
        self._warn = RateLimitedLog(log)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self._stopping = False
        self._ready = asyncio.Event()
        self._failed = asyncio.Event()
        self.maps_decoded = 0
        self.dropped: dict[str, int] = {}

    # -- start and stop -------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.stop()

    async def start(self) -> None:
        s = self.settings
        self.manifest, model = await asyncio.to_thread(load_central_model, s.bundle)
        self.deployment = self.manifest.deployment
        ids = self.manifest.device_ids
        try:
            min_devices = s.min_devices_for(len(ids))
        except ValueError as exc:
            raise DataError(s.bundle, str(exc)) from None
        if self._truth is None and s.truth:
            self._truth = await asyncio.to_thread(open_truth, s.truth, s.truth_pool_size,
                                                  s.truth_pool_seed)  # fmt: skip
        self.registry = DeviceRegistry(
            [(d.id, list(d.receivers)) for d in self.manifest.devices],
            offline_after_s=s.offline_after_s,
            on_change=self._device_changed,
        )
        self.store = MapStore(s.db_path(self.deployment), retention=s.retention)
        self.store.on_lost = self.instruments.maps_lost.inc
        await self.store.open()
        self.registry.restore(await self.store.load_devices())
        self.registry.dirty = False
        self.decoder = Decoder(DecoderRuntime(model, ids, self._truth), threads=s.threads)
        await self.decoder.start()
        self.assembler = Assembler(
            ids, min_devices, s.deadline_ms, t_dec_ms=self.decoder.p95_ms, clock=self._clock,
            clock_mode=s.clock, max_open=s.max_open_samples,
            refine_window_s=s.refine_window_s, on_drop=self._dropped,
        )  # fmt: skip
        self.assembler.remember_closed(await self.store.recent_sample_ids(16_384))
        if self.assembler.budget_ms == 0:
            log.warning(
                "deadline %.0f ms is within the decoder's p95 (%.0f ms): samples decode with "
                "whatever is in at their first latent", s.deadline_ms, self.decoder.p95_ms,
            )  # fmt: skip
        raw_ok = not any(encoder_has_weights(model, i) for i in range(model.n_devices))
        self.inbox: asyncio.Queue[Arrival] = asyncio.Queue(INBOX_BOUND)
        self._results: asyncio.Queue[DecodedMap | None] = asyncio.Queue(RESULTS_BOUND)
        self.consumer = Consumer(
            s.address, Validator(self.manifest, raw_ok, s.max_envelope_bytes), self.inbox,
            on_report=self._report, on_reject=self._rejected,
            on_message=lambda kind: self.instruments.messages.labels(kind).inc(),
            client_id=s.client_id, username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            tls_ca=str(s.tls_ca) if s.tls_ca else None,
        )  # fmt: skip
        for name, coro in (
            ("consumer", self.consumer.run()),
            ("assemble", self._assemble()),
            ("decode", self._decode()),
            ("store", self._store()),
            ("tick", self._tick()),
        ):
            self._spawn(name, coro)
        self.http = HttpServer(self, s.host, s.port)
        await self.http.start()
        if self.http.task is not None:
            self.http.task.add_done_callback(self._task_done)
        self._started = time.monotonic()

    def _spawn(self, name: str, coro: object) -> None:
        task = asyncio.create_task(coro, name=f"central-{name}")  # type: ignore[arg-type]
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        exc = task.exception()
        log.error("%s stopped (%s); the service stops", task.get_name(), exc or "returned",
                  exc_info=exc)  # fmt: skip
        self._failed.set()

    async def wait_failed(self) -> None:
        """Returns if a part of the service stopped by itself (a bug): the caller stops."""
        await self._failed.wait()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            await self.consumer.connected.wait()

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        tasks = {t.get_name().removeprefix("central-"): t for t in self._tasks}
        for name in ("consumer", "assemble", "tick"):
            await _cancel(tasks.get(name))
        # The decode loop ends after its batch in flight; its maps reach the store.
        self._ready.set()
        if "decode" in tasks:
            try:
                async with asyncio.timeout(STOP_DECODE_S):
                    await tasks["decode"]
            except TimeoutError:
                await _cancel(tasks["decode"])
            try:  # the maps already decoded reach the store, within a bound
                async with asyncio.timeout(STOP_DECODE_S):
                    await self._results.put(None)
                    await tasks["store"]
            except Exception:
                log.warning("the store did not finish in %.0f s; stopping anyway", STOP_DECODE_S)
                await _cancel(tasks["store"])
        self.hub.close()  # ends live clients' iterators, so the HTTP server can stop
        if hasattr(self, "http"):
            await self.http.stop()
        if hasattr(self, "decoder"):
            await self.decoder.close()
        if hasattr(self, "store"):
            await self.store.save_devices(self.registry.export())
            await self.store.close()

    # -- the pipeline ---------------------------------------------------------------------
    async def _assemble(self) -> None:
        a = self.assembler
        while True:
            deadline = a.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - a.clock.monotonic())
            try:
                async with asyncio.timeout(timeout):
                    arrival = await self.inbox.get()
                self._accept(arrival)
                for _ in range(INBOX_BOUND):  # what else is already there, without waiting
                    if self.inbox.empty():
                        break
                    self._accept(self.inbox.get_nowait())
            except TimeoutError:
                pass
            a.expire()
            if a.ready_count:
                self._ready.set()
            self.instruments.buffer_depth.set(a.depth)

    def _accept(self, arrival: Arrival) -> None:
        self.registry.latent(arrival)
        outcome = self.assembler.add(arrival)
        device = self.registry.resolve(arrival.device_id)
        if outcome is Outcome.DUPLICATE:
            self.registry.duplicate(device)
            self.instruments.duplicates.labels(device).inc()
        elif outcome in (Outcome.LATE, Outcome.REFINE):
            self.registry.late_latent(device)
            self.instruments.late.labels(device).inc()

    async def _decode(self) -> None:
        batch_max = self.settings.decode_batch_max
        while not self._stopping:
            await self._ready.wait()
            self._ready.clear()
            while not self._stopping and (batch := self.assembler.take_ready(batch_max)):
                try:
                    maps = await self.decoder.decode(batch)
                except Exception:
                    log.exception("decoding %d samples failed; they are dropped", len(batch))
                    for sample in batch:
                        self._dropped(sample.sample_id, "decode-error", sample.devices_used)
                    continue
                self.assembler.t_dec_ms = self.decoder.p95_ms
                seconds = (maps[0].decode_end_ns - maps[0].decode_start_ns) / 1e9
                self.instruments.decode.labels(self.instruments.batch_label(len(batch))).observe(
                    seconds
                )
                for decoded in maps:
                    await self._results.put(decoded)

    async def _store(self) -> None:
        topic = f"epic/{self.deployment}/map/"
        while (decoded := await self._results.get()) is not None:
            summary = summary_of(decoded, self.deployment, self.manifest.model_hash)
            summary = await self.store.save(summary, decoded.velocity)
            self.maps_decoded += 1
            m = self.instruments
            m.maps.labels(str(summary.partial).lower(), str(summary.version > 1).lower()).inc()
            if summary.timings.end_to_end_ms is not None:
                m.end_to_end.observe(max(0.0, summary.timings.end_to_end_ms / 1e3))
            self.hub.publish(MapEvent(map=summary).model_dump(mode="json"))
            self.consumer.publish(topic + summary.sample_id, summary.model_dump_json().encode())

    async def _tick(self) -> None:
        saved = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            self.registry.tick()
            self.instruments.broker_connected.set(int(self.consumer.connected.is_set()))
            if self.registry.dirty and time.monotonic() - saved >= DEVICES_SAVE_S:
                saved = time.monotonic()
                await self.store.save_devices(self.registry.export())

    # -- callbacks ------------------------------------------------------------------------
    def _rejected(self, rejected: Rejected) -> None:
        device = self.registry.rejected(rejected.device, rejected.reason)
        self.instruments.rejected.labels(device, rejected.reason).inc()
        self._warn.warning(rejected.reason, "rejected a message from %s: %s", device, rejected)

    def _report(self, report: DeviceReport) -> None:
        self.registry.report(report)

    def _dropped(self, sample_id: str, reason: str, devices: list[str]) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.instruments.dropped.labels(reason).inc()
        self._warn.warning(
            f"drop-{reason}", "sample %s dropped (%s; devices in: %s)", sample_id, reason,
            ", ".join(devices) or "none",
        )  # fmt: skip

    def _device_changed(self, health: DeviceHealth) -> None:
        self.hub.publish(DeviceEvent(device=health).model_dump(mode="json"))

    # -- CentralView ----------------------------------------------------------------------
    async def latest_map(self) -> MapDetail | None:
        return await self.store.latest()

    async def get_map(self, sample_id: str, version: int | None = None) -> MapDetail | None:
        return await self.store.get(sample_id, version)

    async def list_maps(self, limit: int, before: str | None = None) -> list[MapSummary]:
        return await self.store.list(limit, before)

    def devices(self) -> list[DeviceHealth]:
        return self.registry.snapshot()

    def health(self) -> Health:
        d, a = self.decoder, self.assembler
        connected = self.consumer.connected.is_set()
        return Health(
            status="ok" if connected and self.store.healthy else "degraded",
            deployment=self.deployment,
            model=self.manifest.model,
            model_hash=self.manifest.model_hash,
            broker_connected=connected,
            buffer_depth=a.depth,
            decode_queue_depth=a.ready_count + d.in_flight,
            decode_ms_p50=d.per_sample.percentile(50),
            decode_ms_p95=d.per_sample.percentile(95),
            maps_stored=self.store.count,
            uptime_s=time.monotonic() - self._started,
            rejected=self.registry.rejected_totals(),
            store_ok=self.store.healthy,
            maps_decoded=self.maps_decoded,
            samples_dropped=dict(self.dropped),
            deadline_ms=a.deadline_ms,
            deadline_budget_ms=a.budget_ms,
            min_devices=a.min_devices,
            decode_batch1_ms_p50=d.batch1.percentile(50),
            decode_batch1_ms_p95=d.batch1.percentile(95),
            decode_batched_ms_p50=d.batched.percentile(50),
            decode_batched_ms_p95=d.batched.percentile(95),
        )

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[dict]]:
        return self.hub.subscribe()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
