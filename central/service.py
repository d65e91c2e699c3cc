"""The centre, wired: consumer -> assembler -> decoder -> store -> API, MQTT and live events.

``async with CentralService(settings) as service:`` reads the bundle's manifest and serves
the API first (a port in use is refused at once; until the model is ready the API answers
503 "starting"), then loads the model, opens the store, profiles the decoder, gives the
assembler back the latents kept in the store's ``pending`` table (samples open when the
last run stopped or was killed) and connects to the broker; leaving the block (or
``stop()``) shuts down in order: stop reading the broker, let the latents read be written
and acknowledged, let the decode in flight finish and its maps be stored, save device
health, close the store, stop the HTTP server. Samples still open at the stop keep their
latents in ``pending`` for the next start. The service is the API's ``CentralView``. What
happens to each arrival is ``epic.central.pipeline``; why a latent is acknowledged only once
written, ``epic.central.pending`` and ``epic.central.consumer``. With a PostgreSQL store, a centre
waits after profiling until it is its deployment's active centre (``epic.central.leadership``);
until then its API answers 503 "standby".
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from epic.central.assembler import Assembler, Clock
from epic.central.consumer import Consumer
from epic.central.database import is_url
from epic.central.devices import DeviceRegistry, is_alive
from epic.central.events import EventHub
from epic.central.leadership import TAKEOVER_GRACE_S, Leadership
from epic.central.pending import PendingLatents, reload
from epic.central.pipeline import RESULTS_BOUND, Pipeline
from epic.central.prometheus import Metrics
from epic.central.schemas import DeviceEvent, DeviceHealth, Health, MapDetail, MapSummary
from epic.central.settings import CentralSettings
from epic.central.store import MapStore
from epic.central.truth import Truth, open_truth
from epic.central.validate import Validator
from epic.central.view import ServiceStarting
from epic.central.webserver import HttpServer
from epic.shared.errors import DataError, OptionError
from epic.shared.manifest import Manifest, load_manifest

if TYPE_CHECKING:
    from epic.central.decoder import Decoder

__all__ = ["CentralService"]

log = logging.getLogger(__name__)

# How often the store gets the devices (when they changed) and the centre's own health:
# what ``epic api`` processes serve, so about as fresh as the monitor's own refresh.
DEVICES_SAVE_S = 1.0
HEALTH_SAVE_S = 2.0
STOP_DECODE_S = 30.0
STOP_ACK_S = 5.0  # for the latents read to be written and acknowledged at a stop


@dataclass(frozen=True)
class Parts:
    """A started centre's parts, every one built (``CentralService.parts``)."""

    manifest: Manifest
    http: HttpServer
    registry: DeviceRegistry
    store: MapStore
    decoder: Decoder
    assembler: Assembler
    pipeline: Pipeline
    consumer: Consumer


class CentralService:
    def __init__(
        self,
        settings: CentralSettings,
        truth: Truth | None = None,
        clock: Clock | None = None,
        listener: socket.socket | None = None,
    ) -> None:
        """``listener``: the API's socket, already listening (``epic.central.listener.listen``);
        None to bind ``settings.host:port`` at start."""
        self.settings = settings
        self._truth = truth
        self._clock = clock
        self._listener = listener
        self._stage = "reading the bundle"  # what start() is doing; None once ready
        self._ready = False
        self.instruments = Metrics()
        self.metrics = self.instruments.registry
        self.hub = EventHub(on_drop=self.instruments.subscribers_dropped.inc)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = time.monotonic()
        self._stopping = False
        self._failed = asyncio.Event()
        # The parts, each set by its step of start() as soon as it exists (so that stop()
        # closes what a failed start left): None until then, as in edge.daemon.
        self.manifest: Manifest | None = None
        self._deployment: str | None = None  # the manifest's, as ``deployment``
        self.http: HttpServer | None = None
        self.registry: DeviceRegistry | None = None
        self.store: MapStore | None = None
        self.decoder: Decoder | None = None
        self.assembler: Assembler | None = None
        self.pending: PendingLatents | None = None
        self.pipeline: Pipeline | None = None
        self.consumer: Consumer | None = None
        self.leadership: Leadership | None = None  # with a PostgreSQL store only

    # -- start and stop -------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Serve, then load: the API answers "starting" (503) until ``ready``.

        Each step builds one part with the parts it needs passed in; the pipeline and the
        consumer need each other, so the pipeline publishes through ``_publish``."""
        min_devices = await self._read_manifest()
        await self._serve()
        self._stage = "loading the model"
        bundle, decoding, model = await self._load_model()
        self._build_registry()
        self._stage = "profiling the decoder"
        await self._start_decoder(bundle, decoding, model)
        await self._take_the_lead()
        self._stage = "opening the store"
        await self._open_store()
        self._stage = "restoring the latents kept at the last stop"
        await self._build_assembler(min_devices)
        await self._open_pending()
        self._build_pipeline()
        validator = self._validator(bundle, model)
        await self._reload_pending(validator)
        self._build_consumer(validator)
        self._spawn_all()
        self._started = time.monotonic()
        self._ready, self._stage = True, "ready"

    # -- the steps of start(), in order ---------------------------------------------------
    async def _read_manifest(self) -> int:
        """The bundle's manifest; returns the devices a sample needs at its deadline."""
        s = self.settings
        self.manifest = await asyncio.to_thread(load_manifest, s.bundle)
        self._deployment = self.manifest.deployment
        try:
            return s.min_devices_for(len(self.manifest.devices))
        except ValueError as exc:
            raise OptionError(s.bundle, str(exc)) from None

    async def _serve(self) -> None:
        """The API, at once: it answers "starting" until the rest is ready."""
        s = self.settings
        token = s.api_token.get_secret_value() if s.api_token else None
        self.http = HttpServer(
            self,
            s.host,
            s.port,
            sock=self._listener,
            api_token=token,
            max_live_clients=s.max_live_clients,
        )
        await self.http.start()
        if self.http.task is not None:
            self.http.task.add_done_callback(self._task_done)

    async def _load_model(self) -> tuple[ModuleType, ModuleType, Any]:
        """``epic.shared.bundle``, ``epic.central.decoder`` and the centre's model (and the truth to
        score maps against, if asked)."""
        s = self.settings
        # torch and the model code are imported here, in a worker thread (seconds), so that
        # the API already answers "starting" meanwhile.
        bundle, decoding = await asyncio.to_thread(_import_model_code)
        self.manifest, model = await asyncio.to_thread(bundle.load_central_model, s.bundle)
        if self._truth is None and s.truth:
            self._truth = await asyncio.to_thread(
                open_truth, s.truth, s.truth_pool_size, s.truth_pool_seed
            )
        return bundle, decoding, model

    def _build_registry(self) -> None:
        assert self.manifest is not None
        self.registry = DeviceRegistry(
            [(d.id, list(d.receivers)) for d in self.manifest.devices],
            offline_after_s=self.settings.offline_after_s,
            on_change=self._device_changed,
        )

    async def _take_the_lead(self) -> None:
        """With a PostgreSQL store, wait to be the deployment's active centre
        (``epic.central.leadership``); the model is loaded and profiled already, so that a
        standby takes over in the time it takes to open the store and connect."""
        location = self.settings.db_location(self.deployment)
        if not is_url(location):
            return  # a SQLite file belongs to one centre
        self.leadership = Leadership(location, self.deployment)
        self._stage = "waiting to be the active centre"

        def standby() -> None:
            self._stage = "standby: another centre of this deployment is active"

        if await self.leadership.acquire(on_standby=standby):
            await asyncio.sleep(TAKEOVER_GRACE_S)  # why: epic.central.leadership

    async def _open_store(self) -> None:
        """The map store, and the device health saved at the last stop."""
        assert self.registry is not None
        s = self.settings
        self.store = MapStore(
            s.db_location(self.deployment),
            self.deployment,
            retention=s.retention,
            on_lost=self.instruments.maps_lost.inc,
        )
        await self.store.open()
        self.registry.restore(await self.store.load_devices())
        self.registry.dirty = False

    async def _start_decoder(self, bundle: ModuleType, decoding: ModuleType, model: Any) -> None:
        """The decoder, profiled: its p95 is what the assembler's deadline leaves it."""
        assert self.manifest is not None
        session = await asyncio.to_thread(self._central_onnx, bundle)
        runtime = decoding.DecoderRuntime(model, self.manifest.device_ids, self._truth, session)
        self.decoder = decoding.Decoder(runtime, threads=self.settings.threads)
        await self.decoder.start()

    async def _build_assembler(self, min_devices: int) -> None:
        assert self.manifest is not None and self.decoder is not None
        assert self.store is not None
        s = self.settings
        self.assembler = Assembler(
            self.manifest.device_ids,
            min_devices,
            s.deadline_ms,
            t_dec_ms=self.decoder.p95_ms,
            clock=self._clock,
            clock_mode=s.clock,
            max_open=s.max_open_samples,
            refine_window_s=s.refine_window_s,
        )
        self.assembler.remember_closed(await self.store.recent_sample_ids(16_384))
        if self.assembler.budget_ms == 0:
            log.warning(
                "deadline %.0f ms is within the decoder's p95 (%.0f ms): samples decode with "
                "whatever is in at their first latent",
                s.deadline_ms,
                self.decoder.p95_ms,
            )

    async def _open_pending(self) -> None:
        """Kept latents (central.pending): none with an in-memory store, where nothing would
        survive anyway; then paho acknowledges on receipt, as before."""
        assert self.store is not None and self.manifest is not None
        if self.store.in_memory:
            return
        # The bound is twice what the pipeline can hold (buffer, a decode batch, maps
        # waiting for the store).
        s = self.settings
        held = s.max_open_samples + s.decode_batch_max + RESULTS_BOUND
        self.pending = PendingLatents(self.store, max_rows=2 * held * len(self.manifest.device_ids))
        await self.pending.open()

    def _build_pipeline(self) -> None:
        a, d, st, r = self.assembler, self.decoder, self.store, self.registry
        assert a is not None and d is not None and st is not None and r is not None
        assert self.manifest is not None
        self.pipeline = Pipeline(
            a,
            d,
            st,
            r,
            self.hub,
            self.instruments,
            deployment=self.deployment,
            model_hash=self.manifest.model_hash,
            batch_max=self.settings.decode_batch_max,
            pending=self.pending,
            publish=self._publish,
        )

    def _validator(self, bundle: ModuleType, model: Any) -> Validator:
        assert self.manifest is not None
        raw_ok = not any(bundle.encoder_has_weights(model, i) for i in range(model.n_devices))
        return Validator(self.manifest, raw_ok, self.settings.max_envelope_bytes)

    async def _reload_pending(self, validator: Validator) -> None:
        """The latents kept at the last stop, back in the assembler."""
        assert self.assembler is not None and self.pipeline is not None
        if self.pending is not None and await reload(self.pending, validator, self.assembler):
            self.pipeline.ready.set()  # a sample complete at the kill decodes now

    def _build_consumer(self, validator: Validator) -> None:
        assert self.pipeline is not None and self.registry is not None
        s = self.settings
        self.consumer = Consumer(
            s.addresses,
            validator,
            self.pipeline.inbox,
            on_report=self.registry.report,
            on_reject=self.pipeline.on_reject,
            on_message=lambda kind: self.instruments.messages.labels(kind).inc(),
            client_id=s.client_id,
            username=s.username or s.address.username,
            password=s.password.get_secret_value() if s.password else s.address.password,
            tls_ca=str(s.tls_ca) if s.tls_ca else None,
            pending=self.pending,
        )

    def _spawn_all(self) -> None:
        assert self.consumer is not None and self.pipeline is not None
        if self.pending is not None:
            self._spawn("pending", self.pending.run())
        if self.leadership is not None:
            self._spawn("leadership", self.leadership.watch())
        for name, coro in (
            ("consumer", self.consumer.run()),
            ("assemble", self.pipeline.assemble()),
            ("decode", self.pipeline.decode()),
            ("store", self.pipeline.store_maps()),
            ("tick", self._tick()),
        ):
            self._spawn(name, coro)

    def _publish(self, topic: str, payload: bytes) -> None:
        """The pipeline's way to the broker: the consumer's, built after the pipeline (it
        reads into the pipeline's inbox). Nothing is published before it exists: the
        pipeline's tasks start after it."""
        if self.consumer is not None:
            self.consumer.publish(topic, payload)

    @property
    def deployment(self) -> str:
        """The bundle's deployment, known once start() has read its manifest."""
        if self._deployment is None:
            raise RuntimeError("the deployment is unknown until start() reads the manifest")
        return self._deployment

    @property
    def parts(self) -> Parts:
        """The parts once start() has built them all; RuntimeError before (or if it failed)."""
        m, h, r, st = self.manifest, self.http, self.registry, self.store
        d, a, p, c = self.decoder, self.assembler, self.pipeline, self.consumer
        if (
            m is None
            or h is None
            or r is None
            or st is None
            or d is None
            or a is None
            or p is None
            or c is None
        ):
            raise RuntimeError("the centre is not started: start() builds its parts")
        return Parts(m, h, r, st, d, a, p, c)

    @property
    def ready(self) -> bool:
        """Model loaded and profiled, store open, broker client running."""
        return self._ready

    def _require_ready(self) -> None:
        if not self._ready:
            raise ServiceStarting(self._stage)

    def _spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro, name=f"central-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        exc = task.exception()
        log.error(
            "%s stopped (%s); the service stops", task.get_name(), exc or "returned", exc_info=exc
        )
        self._failed.set()

    async def wait_failed(self) -> None:
        """Returns if a part of the service stopped by itself (a bug): the caller stops."""
        await self._failed.wait()

    async def wait_connected(self, timeout: float = 10.0) -> None:
        assert self.consumer is not None, "start() first"
        async with asyncio.timeout(timeout):
            await self.consumer.connected.wait()

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        tasks = {t.get_name().removeprefix("central-"): t for t in self._tasks}
        if "consumer" in tasks and self.consumer is not None:
            # Read no more; what was read is written and acknowledged before the DISCONNECT.
            await self.consumer.stop_reading(STOP_ACK_S)
        for name in ("consumer", "assemble", "tick", "leadership"):
            await _cancel(tasks.get(name))
        if "decode" in tasks and self.pipeline is not None:
            # The decode loop ends after its batch in flight; its maps reach the store.
            self.pipeline.stopping = True
            self.pipeline.ready.set()
            try:
                async with asyncio.timeout(STOP_DECODE_S):
                    await tasks["decode"]
            except TimeoutError:
                await _cancel(tasks["decode"])
            try:  # the maps already decoded reach the store, within a bound
                async with asyncio.timeout(STOP_DECODE_S):
                    await self.pipeline.results.put(None)
                    await tasks["store"]
            except Exception:
                log.warning("the store did not finish in %.0f s; stopping anyway", STOP_DECODE_S)
                await _cancel(tasks["store"])
        if "pending" in tasks and self.pending is not None:
            await self.pending.flush(STOP_ACK_S)  # the rows of the maps just stored go
            await _cancel(tasks["pending"])
        self.hub.close()  # ends live clients' iterators, so the HTTP server can stop
        if self.http is not None:
            await self.http.stop()
        if self._listener is not None:
            self._listener.close()  # already closed by uvicorn, unless it never served
        if self.decoder is not None:
            await self.decoder.close()
        if self.store is not None:
            if self.registry is not None:  # always, once there is a store
                shown = {d.id: d.model_dump_json() for d in self.registry.snapshot()}
                await self.store.save_devices(self.registry.export(), shown)
            await self.store.close()
        if self.leadership is not None:  # last: a standby takes over once all is written
            await self.leadership.release()

    async def _tick(self) -> None:
        p = self.parts  # spawned once every part is built
        saved = reported = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            p.registry.tick()
            self.instruments.broker_connected.set(int(p.consumer.connected.is_set()))
            now = time.monotonic()
            # Every HEALTH_SAVE_S whatever changed: a silent device turns late with no event.
            report = now - reported >= HEALTH_SAVE_S
            if report or (p.registry.dirty and now - saved >= DEVICES_SAVE_S):
                saved = now
                await self._save_devices()
            if report:
                reported = now
                await p.store.save_health(self.health().model_dump_json())

    async def _save_devices(self) -> None:
        p = self.parts
        shown = {d.id: d.model_dump_json() for d in p.registry.snapshot()}
        await p.store.save_devices(p.registry.export(), shown)

    def _central_onnx(self, bundle: ModuleType) -> Any:
        """The bundle's onnxruntime decoder, or None for PyTorch (``--decoder``)."""
        s = self.settings
        if s.decoder == "torch":
            return None
        try:
            return bundle.load_central_onnx(s.bundle, self.manifest, s.threads)
        except DataError as exc:
            if s.decoder == "onnx":
                raise
            log.info("decoding with PyTorch: %s", exc)
            return None

    def _device_changed(self, health: DeviceHealth) -> None:
        self.hub.publish(DeviceEvent(device=health).model_dump(mode="json"))
        # A device gone is not waited for: samples waiting only for it decode now.
        a, pipeline = self.assembler, self.pipeline  # None while the centre starts
        if a is not None and a.set_alive(health.id, is_alive(health)) and pipeline is not None:
            pipeline.ready.set()

    # -- CentralView ----------------------------------------------------------------------
    async def latest_map(self) -> MapDetail | None:
        self._require_ready()
        return await self.parts.store.latest()

    async def get_map(self, sample_id: str, version: int | None = None) -> MapDetail | None:
        self._require_ready()
        return await self.parts.store.get(sample_id, version)

    async def list_maps(self, limit: int, before: str | None = None) -> list[MapSummary]:
        self._require_ready()
        return await self.parts.store.list(limit, before)

    async def truth(self, sample_id: str) -> np.ndarray | None:
        if self._truth is None:
            return None
        try:
            found = await asyncio.to_thread(self._truth, sample_id)
        except Exception as exc:  # the truth is the demo's extra: a picture without it
            log.warning("no true map for %s: %s", sample_id, exc)
            return None
        return None if found is None else np.asarray(found, dtype=np.float32)

    async def delete_map(self, sample_id: str) -> int:
        self._require_ready()
        deleted = await self.parts.store.delete(sample_id)
        if deleted:
            log.warning("map of %s deleted through the API (%d versions)", sample_id, deleted)
        return deleted

    def devices(self) -> list[DeviceHealth]:
        self._require_ready()
        return self.parts.registry.snapshot()

    def health(self) -> Health:
        self._require_ready()
        p = self.parts
        d, a = p.decoder, p.assembler
        connected = p.consumer.connected.is_set()
        return Health(
            status="ok" if connected and p.store.healthy else "degraded",
            deployment=self.deployment,
            model=p.manifest.model,
            model_hash=p.manifest.model_hash,
            broker_connected=connected,
            buffer_depth=a.depth,
            decode_queue_depth=a.ready_count + d.in_flight,
            decode_ms_p50=d.per_sample.percentile(50),
            decode_ms_p95=d.per_sample.percentile(95),
            maps_stored=p.store.count,
            uptime_s=time.monotonic() - self._started,
            rejected=p.registry.rejected_totals(),
            store_ok=p.store.healthy,
            maps_decoded=p.pipeline.maps_decoded,
            samples_dropped=dict(p.pipeline.dropped),
            deadline_ms=a.deadline_ms,
            deadline_budget_ms=a.budget_ms,
            min_devices=a.min_devices,
            decoder_runtime=d.runtime.runtime,
            decode_batch1_ms_p50=d.batch1.percentile(50),
            decode_batch1_ms_p95=d.batch1.percentile(95),
            decode_batched_ms_p50=d.batched.percentile(50),
            decode_batched_ms_p95=d.batched.percentile(95),
        )

    def subscribe(self) -> AbstractAsyncContextManager[AsyncIterator[dict]]:
        return self.hub.subscribe()


def _import_model_code() -> tuple[ModuleType, ModuleType]:
    """``epic.shared.bundle`` and ``epic.central.decoder``: the modules that import torch."""
    return importlib.import_module("epic.shared.bundle"), importlib.import_module(
        "epic.central.decoder"
    )


async def _cancel(task: asyncio.Task[None] | None, wait_s: float = 10.0) -> None:
    """Cancel and wait a bounded time: a stop must not hang on one part's clean-up."""
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        async with asyncio.timeout(wait_s):
            await asyncio.shield(task)
    if not task.done():
        log.warning("%s did not stop within %.0f s; leaving it", task.get_name(), wait_s)
