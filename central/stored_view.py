"""Every deployment in a database, as ``epic api`` serves it: maps from the store, devices
and health as each deployment's active centre last wrote them, and live events.

Stateless on purpose: all it knows it reads from the database, so any number of API
processes can serve behind a load balancer with no sticky sessions. Live events start from
the database too. PostgreSQL's ``NOTIFY`` (sent by the centres' writes,
``epic.central.database``) is only the doorbell: woken, a process reads what is new since
the last ``seq`` it saw, so a notification lost while it reconnects costs nothing but the
``SAFETY_POLL_S`` wait. SQLite has no notifications: it is polled every ``SQLITE_POLL_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import numpy as np
from prometheus_client import CollectorRegistry, Gauge
from pydantic import ValidationError
from sqlalchemy import select, union
from sqlalchemy.engine import make_url

from epic.central.database import (
    NOTIFY_CHANNEL,
    Database,
    DatabaseError,
    centres,
    devices,
    maps,
    reading,
)
from epic.central.deployments import Deployments, UnknownDeployment
from epic.central.events import EventHub
from epic.central.ratelimit import RateLimitedLog
from epic.central.schemas import (
    DeploymentSummary,
    DeviceEvent,
    DeviceHealth,
    Health,
    MapDetail,
    MapEvent,
    MapSummary,
)
from epic.central.store import MapStore
from epic.central.view import ServiceStarting
from epic.shared.errors import UserError

__all__ = ["StoredDeployment", "StoredDeployments"]

log = logging.getLogger(__name__)

SQLITE_POLL_S = 0.5
SAFETY_POLL_S = 5.0  # PostgreSQL: read anyway this often, in case a NOTIFY was missed
STALE_S = 10.0  # a centre silent this long (it writes its health every 2 s) is shown stale
EVENT_QUEUE = 64
READ_BATCH = 200  # maps read at a time when catching up


class StoredDeployment:
    """One deployment read from the database: a ``CentralView``."""

    def __init__(self, store: MapStore, metrics: CollectorRegistry) -> None:
        self.store = store
        self.metrics = metrics
        self.hub = EventHub(EVENT_QUEUE)
        self._devices: dict[str, DeviceHealth] = {}
        self._device_updated: dict[str, int] = {}
        self._health: Health | None = None
        self._seq = 0

    @property
    def deployment(self) -> str:
        return self.store.deployment

    # -- CentralView ----------------------------------------------------------------------
    async def latest_map(self) -> MapDetail | None:
        return await self.store.latest()

    async def get_map(self, sample_id: str, version: int | None = None) -> MapDetail | None:
        return await self.store.get(sample_id, version)

    async def list_maps(self, limit: int, before: str | None = None) -> list[MapSummary]:
        return await self.store.list(limit, before)

    async def truth(self, sample_id: str) -> np.ndarray | None:
        return None  # only a demo centre's simulator knows it

    async def delete_map(self, sample_id: str) -> int:
        deleted = await self.store.delete(sample_id)
        if deleted:
            log.warning("%s: map of %s deleted through the API", self.deployment, sample_id)
        return deleted

    def devices(self) -> list[DeviceHealth]:
        return list(self._devices.values())

    def health(self) -> Health:
        if self._health is None:
            raise ServiceStarting("waiting for its centre's first report")
        return self._health

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict]]:
        return self.hub.subscribe()

    # -- keeping up -----------------------------------------------------------------------
    @property
    def stale(self) -> bool:
        reported = self._health.reported_ns if self._health is not None else None
        return reported is None or time.time_ns() - reported > STALE_S * 1e9

    async def start(self) -> None:
        """Read what is there now; events are what comes after."""
        await self.store.open()
        self._seq = await self.store.newest_seq()
        await self.refresh(publish=False)

    async def refresh(self, publish: bool = True) -> None:
        """Read what changed since the last call and tell the live clients."""
        for summary in await self._new_maps():
            if publish:
                self.hub.publish(MapEvent(map=summary).model_dump(mode="json"))
        for device in await self._changed_devices():
            if publish:
                self.hub.publish(DeviceEvent(device=device).model_dump(mode="json"))
        found = await self.store.centre_health()
        if found is not None:
            text, updated_ns = found
            try:
                health = Health.model_validate_json(text)
                self._health = health.model_copy(update={"reported_ns": updated_ns})
            except ValidationError:
                log.warning("%s: its centre's health is unreadable; ignored", self.deployment)
        if self._health is not None and self.stale:
            self._health = self._health.model_copy(
                update={"status": "degraded", "broker_connected": False}
            )

    async def _new_maps(self) -> list[MapSummary]:
        new: list[MapSummary] = []
        while batch := await self.store.stored_since(self._seq, READ_BATCH):
            self._seq = batch[-1][0]
            new += [summary for _, summary in batch]
            if len(batch) < READ_BATCH:
                break
        return new

    async def _changed_devices(self) -> list[DeviceHealth]:
        changed = []
        for device_id, text, updated_ns in await self.store.device_snapshots():
            if self._device_updated.get(device_id) == updated_ns:
                continue
            try:
                device = DeviceHealth.model_validate_json(text)
            except ValidationError:
                continue
            self._device_updated[device_id] = updated_ns
            if self._devices.get(device_id) != device:
                self._devices[device_id] = device
                changed.append(device)
        return changed

    def summary(self) -> DeploymentSummary:
        h = self._health
        devices_now = self.devices()
        return DeploymentSummary(
            deployment=self.deployment,
            status="starting" if h is None else ("stale" if self.stale else h.status),
            maps_stored=self.store.count if h is None else h.maps_stored,
            devices=len(devices_now),
            devices_online=sum(d.online for d in devices_now),
            reported_ns=None if h is None else h.reported_ns,
        )

    async def close(self) -> None:
        self.hub.close()
        await self.store.close()


class StoredDeployments(Deployments):
    """Every deployment of one database, found as they appear."""

    def __init__(self, location: str, only: list[str] | None = None) -> None:
        """``only``: serve these deployments and no others (default: every one)."""
        self.database = Database(location)
        self.location = location
        self.only = only
        self.metrics = CollectorRegistry()
        self._served = Gauge(
            "epic_api_deployments", "deployments this API process serves", registry=self.metrics
        )
        self._views: dict[str, StoredDeployment] = {}
        self._task: asyncio.Task[None] | None = None
        self._warn = RateLimitedLog(log)
        self.wake = asyncio.Event()  # set: read the database now

    def names(self) -> list[str]:
        return sorted(self._views)

    def view(self, name: str) -> StoredDeployment:
        if name not in self._views:
            raise UnknownDeployment(name, self.names())
        return self._views[name]

    async def summaries(self) -> list[DeploymentSummary]:
        out = []
        for name in self.names():
            view = self._views[name]
            summary = view.summary()
            latest = await view.latest_map()
            if latest is not None:
                summary.latest_sample_id = latest.sample_id
                summary.latest_stored_ns = latest.timings.stored_ns
            out.append(summary)
        return out

    # -- life -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the database (migrating it if it is older) and serve what it holds."""
        await asyncio.to_thread(self._check)
        await self._discover()
        self._task = asyncio.create_task(self._follow(), name="follow-database")
        self._task.add_done_callback(_said_if_failed)

    def _check(self) -> None:
        conn = self.database.open("unnamed")  # migrates; no row needs a deployment here
        conn.close()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for view in self._views.values():
            await view.close()
        self.database.dispose()

    async def _discover(self) -> None:
        try:
            found = await asyncio.to_thread(self._deployments_in_database)
        except DatabaseError as exc:
            self._warn.warning("discover", "cannot list deployments: %s", exc)
            return
        for name in sorted(found - set(self._views)):
            if self.only is not None and name not in self.only:
                continue
            view = StoredDeployment(MapStore(self.location, name), self.metrics)
            try:
                await view.start()
            except (DatabaseError, UserError) as exc:  # the next refresh tries again
                self._warn.warning("open", "deployment %s not served yet: %s", name, exc)
                await view.close()
                continue
            self._views[name] = view
            log.info("serving deployment %s", name)
        self._served.set(len(self._views))

    def _deployments_in_database(self) -> set[str]:
        query = union(
            select(centres.c.deployment),
            select(devices.c.deployment),
            select(maps.c.deployment).distinct(),
        )
        with self.database.engine.connect() as conn, reading(conn):
            return {row[0] for row in conn.execute(query)}

    async def refresh(self, names: set[str] | None = None) -> None:
        """Read the database now: new deployments, then the news of ``names`` (all when
        None)."""
        if names is None or not names <= set(self._views):
            await self._discover()
        for view in list(self._views.values()):
            if names is not None and view.deployment not in names:
                continue
            try:
                await view.refresh()
            except DatabaseError as exc:
                self._warn.warning("refresh", "%s: not refreshed: %s", view.deployment, exc)

    async def _follow(self) -> None:
        if self.database.server:
            await self._listen()
        else:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SQLITE_POLL_S):
                        await self.wake.wait()
                self.wake.clear()
                await self.refresh()

    async def _listen(self) -> None:
        import psycopg  # PostgreSQL only

        url = make_url(self.location).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    await self.refresh()  # what changed while not listening
                    while True:
                        rung = {
                            n.payload
                            async for n in conn.notifies(timeout=SAFETY_POLL_S, stop_after=1)
                        }
                        # A burst of maps is one read: take what else is queued first.
                        rung |= {n.payload async for n in conn.notifies(timeout=0.02)}
                        await self.refresh(rung or None)  # None: the safety poll, all
            except psycopg.Error as exc:
                self._warn.warning("listen", "database notifications lost (%s); retrying", exc)
                await asyncio.sleep(1.0)
                with contextlib.suppress(DatabaseError):
                    await self.refresh()


def _said_if_failed(task: asyncio.Task[None]) -> None:
    """Live events stop with the task: never silently."""
    if not task.cancelled() and task.exception() is not None:
        log.error("following the database stopped: %r; live events end", task.exception())
