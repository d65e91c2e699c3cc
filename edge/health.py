"""What an edge says about itself: its retained status and its periodic heartbeat.

``status``: ``epic/<dep>/status/<device>``, retained, JSON. Published ``online: true`` on
every connect; the same topic carries the Last Will (``online: false``, ``reason: "lost"``),
which the broker publishes when the connection dies without a goodbye, and a clean shutdown
publishes ``online: false`` with ``reason: "shutdown"`` itself.

``heartbeat``: ``epic/<dep>/heartbeat/<device>``, JSON: counters since the daemon started,
encode time percentiles over the last 256 samples, and the outbox. All of them on connect,
``heartbeat_s`` later and then every ``stats_s``; in between (a heartbeat after a silence,
``epic.edge.publisher``) only ``time_ns`` and the figures that changed since the last heartbeat:
an idle device's says just that it is alive, in 31 bytes instead of 300. The centre keeps
the figures last sent.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "EdgeStats",
    "StatusInfo",
    "encode_heartbeat",
    "heartbeat_figures",
    "status_payload",
]

_WINDOW = 256


@dataclass
class EdgeStats:
    """Counters of one daemon run (the outbox keeps its own depth and drops)."""

    started_ns: int = field(default_factory=time.time_ns)
    started_mono: float = field(default_factory=time.monotonic)
    samples_encoded: int = 0
    samples_rejected: int = 0  # unusable input, skipped with a log line
    bytes_sent: int = 0
    envelopes_sent: int = 0
    connects: int = 0
    reconnects: int = 0  # successful connections after the first
    connect_failures: int = 0
    encode_ms: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))

    def encode_percentiles(self) -> tuple[float | None, float | None]:
        if not self.encode_ms:
            return None, None
        p50, p95 = np.percentile(np.fromiter(self.encode_ms, float), [50, 95])
        return round(float(p50), 3), round(float(p95), 3)

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_mono


@dataclass(frozen=True)
class StatusInfo:
    """The fixed part of a device's status."""

    deployment: str
    device_id: str
    bundle_hash: str
    software: str
    receivers: tuple[int, int]
    mode: str
    runtime: str
    since_ns: int
    source: dict[str, Any]


def status_payload(info: StatusInfo, online: bool, reason: str | None = None) -> bytes:
    body: dict[str, Any] = {
        "device_id": info.device_id,
        "deployment": info.deployment,
        "online": online,
        "bundle_hash": info.bundle_hash,
        "software": info.software,
        "receivers": list(info.receivers),
        "mode": info.mode,
        "runtime": info.runtime,
        "since_ns": info.since_ns,
        "source": info.source,
    }
    if reason is not None:
        body["reason"] = reason
    return json.dumps(body, separators=(",", ":")).encode()


def encode_heartbeat(figures: dict[str, Any], previous: dict[str, Any] | None = None) -> bytes:
    """JSON of ``figures``, or, given the ``previous`` heartbeat's, of ``time_ns`` and the
    figures that changed (uptime aside: the time says it)."""
    if previous is not None:
        figures = {
            k: v
            for k, v in figures.items()
            if k == "time_ns" or (k != "uptime_s" and previous.get(k) != v)
        }
    return json.dumps(figures, separators=(",", ":")).encode()


def heartbeat_figures(
    device_id: str,
    stats: EdgeStats,
    outbox_depth: int,
    outbox_bytes: int,
    dropped: int,
    skipped: int,
) -> dict[str, Any]:
    p50, p95 = stats.encode_percentiles()
    return {
        "device_id": device_id,
        "time_ns": time.time_ns(),
        "uptime_s": round(stats.uptime_s, 3),
        "samples_encoded": stats.samples_encoded,
        "samples_rejected": stats.samples_rejected,
        "samples_skipped": skipped,
        "encode_ms_p50": p50,
        "encode_ms_p95": p95,
        "bytes_sent": stats.bytes_sent,
        "envelopes_sent": stats.envelopes_sent,
        "outbox_depth": outbox_depth,
        "outbox_bytes": outbox_bytes,
        "dropped": dropped,
        "reconnects": stats.reconnects,
        "connect_failures": stats.connect_failures,
    }
