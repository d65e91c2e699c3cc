"""Device health as the centre sees it: online or offline (the retained status and its Last
Will), late (silent for longer than ``offline_after_s``, or never heard from for that long
since the centre started), what each device sent, what was
rejected and why, how late its latents arrive, and its own last heartbeat.

Every device of the manifest has an entry from the start; another that speaks (a valid id
the manifest does not know) gets one too, up to ``max_extra``; beyond that, and for
messages whose sender cannot be named, counts go to ``?``, which is not listed as a device
but is counted in the totals. ``on_change`` is called with a device's health whenever its
status (online, offline, late) changes and on each heartbeat.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from epic.central.schemas import DeviceHealth
from epic.central.validate import UNKNOWN_DEVICE, Arrival, DeviceReport, online_of

__all__ = ["DeviceRegistry", "is_alive"]

Status = Literal["online", "offline", "unknown"]
_KEPT = (
    "last_seen_ns",
    "bundle_hash",
    "software",
    "latents_received",
    "rejected",
    "late_latents",
    "duplicates",
    "heartbeat",
)


@dataclass
class _Device:
    id: str
    receivers: list[int] | None = None
    status: Status = "unknown"
    stopped: bool = False  # offline because it said goodbye ("reason": "shutdown")
    late: bool = False
    last_seen_ns: int | None = None
    last_activity: float | None = None  # monotonic; not kept across restarts
    bundle_hash: str | None = None
    software: str | None = None
    latents_received: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    late_latents: int = 0
    duplicates: int = 0
    delays_ms: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    heartbeat: dict | None = None


class DeviceRegistry:
    def __init__(
        self,
        devices: Sequence[tuple[str, list[int] | None]],
        offline_after_s: float = 15.0,
        max_extra: int = 64,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[DeviceHealth], None] | None = None,
    ) -> None:
        self._devices = {d: _Device(d, receivers) for d, receivers in devices}
        self._manifest = len(self._devices)
        self._unknown = _Device(UNKNOWN_DEVICE)
        self.offline_after_s = offline_after_s
        self.max_extra = max_extra
        self.clock = clock
        self.on_change = on_change or (lambda health: None)
        self.dirty = False  # changed since the last ``export``
        self._started = clock()

    def resolve(self, device_id: str) -> str:
        """The id counts are kept under: the device's own, or ``?``."""
        return self._get(device_id).id

    def _get(self, device_id: str) -> _Device:
        device = self._devices.get(device_id)
        if device is not None:
            return device
        if device_id == UNKNOWN_DEVICE or len(self._devices) - self._manifest >= self.max_extra:
            return self._unknown
        device = self._devices[device_id] = _Device(device_id)
        return device

    # -- what happened --------------------------------------------------------------------
    def latent(self, arrival: Arrival) -> None:
        device = self._get(arrival.device_id)
        device.latents_received += 1
        if arrival.acquired_ns > 0:
            device.delays_ms.append((arrival.arrival_ns - arrival.acquired_ns) / 1e6)
        self._active(device, arrival.arrival_ns)

    def rejected(self, device_id: str, reason: str) -> str:
        device = self._get(device_id)
        device.rejected[reason] = device.rejected.get(reason, 0) + 1
        self.dirty = True
        return device.id

    def duplicate(self, device_id: str) -> None:
        self._get(device_id).duplicates += 1
        self.dirty = True

    def late_latent(self, device_id: str) -> None:
        self._get(device_id).late_latents += 1
        self.dirty = True

    def report(self, report: DeviceReport) -> None:
        device = self._get(report.device_id)
        if device is self._unknown:
            return
        payload = report.payload
        if report.kind == "heartbeat":
            # A heartbeat between two full ones carries only what changed (edge.health).
            device.heartbeat = {**(device.heartbeat or {}), **(payload or {})}
            self._active(device, time.time_ns())
            self._changed(device)
            return
        status: Status = (
            "unknown" if payload is None else ("online" if online_of(payload) else "offline")
        )
        if payload is not None:
            device.bundle_hash = _str(payload.get("bundle_hash", payload.get("model_hash")))
            device.software = _str(payload.get("software", payload.get("version")))
            receivers = payload.get("receivers")
            if isinstance(receivers, list) and all(isinstance(r, int) for r in receivers):
                device.receivers = receivers
        if status == "online":
            # A retained "online" replayed at our start says nothing about now: the device
            # has offline_after_s from here to show a heartbeat before it is called late.
            device.last_activity = self.clock()
        before = (device.status, device.late)
        device.status, device.late = status, False
        device.stopped = status == "offline" and (payload or {}).get("reason") == "shutdown"
        self.dirty = True
        if (device.status, device.late) != before:
            self._changed(device)

    def _active(self, device: _Device, wall_ns: int) -> None:
        device.last_seen_ns = wall_ns
        device.last_activity = self.clock()
        self.dirty = True
        if device.late:
            device.late = False
            self._changed(device)

    def tick(self) -> None:
        """Flag devices silent for longer than ``offline_after_s``."""
        now = self.clock()
        for device in self._devices.values():
            # A manifest device never heard from is late too, counted from the centre's
            # start: samples stop waiting for a device that never came up.
            since = self._started if device.last_activity is None else device.last_activity
            silent = now - since > self.offline_after_s
            late = silent and device.status != "offline"
            if late != device.late:
                device.late = late
                self._changed(device)

    def _changed(self, device: _Device) -> None:
        self.on_change(self._health(device))

    # -- what it looks like ---------------------------------------------------------------
    def _health(self, d: _Device) -> DeviceHealth:
        delays = np.asarray(d.delays_ms) if d.delays_ms else None
        recent = d.last_activity is not None and (
            self.clock() - d.last_activity <= self.offline_after_s
        )
        return DeviceHealth(
            id=d.id,
            online=d.status == "online" or (d.status == "unknown" and recent),
            status=d.status,
            late=d.late,
            last_seen_ns=d.last_seen_ns,
            bundle_hash=d.bundle_hash,
            software=d.software,
            receivers=d.receivers,
            latents_received=d.latents_received,
            rejected=dict(d.rejected),
            late_latents=d.late_latents,
            duplicates=d.duplicates,
            arrival_delay_ms_p50=None if delays is None else float(np.percentile(delays, 50)),
            arrival_delay_ms_p95=None if delays is None else float(np.percentile(delays, 95)),
            heartbeat=d.heartbeat,
        )

    def stopped(self, device_id: str) -> bool:
        """Whether the device is offline because it was stopped (not lost, not late)."""
        device = self._devices.get(device_id)
        return device is not None and device.stopped

    def snapshot(self) -> list[DeviceHealth]:
        """Manifest devices first, in order, then the others in the order they spoke."""
        return [self._health(d) for d in self._devices.values()]

    def health(self, device_id: str) -> DeviceHealth | None:
        device = self._devices.get(device_id)
        return None if device is None else self._health(device)

    def rejected_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for device in [*self._devices.values(), self._unknown]:
            for reason, n in device.rejected.items():
                totals[reason] = totals.get(reason, 0) + n
        return totals

    # -- across restarts ------------------------------------------------------------------
    def export(self) -> dict[str, dict[str, Any]]:
        self.dirty = False
        return {
            d.id: {k: getattr(d, k) for k in _KEPT}
            for d in [*self._devices.values(), self._unknown]
        }

    def restore(self, saved: dict[str, dict[str, Any]]) -> None:
        """Counters and last figures from a previous run (status comes fresh from MQTT)."""
        for device_id, values in saved.items():
            device = self._get(device_id)
            for key in _KEPT:
                if key in values:
                    setattr(device, key, values[key])


def is_alive(health: DeviceHealth) -> bool:
    """Whether samples should wait for this device: not offline (its status or its Last
    Will) and not late (heartbeats and latents stopped for ``offline_after_s``, or none
    since the centre started). A device not heard from yet counts as alive until then: the
    deadline bounds the wait for it, and its retained status may simply not be in yet."""
    return health.status != "offline" and not health.late


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
