"""What the centre accepts from the broker: every MQTT message is checked here and comes out
as an ``Arrival`` (a latent or raw block to assemble), a ``DeviceReport`` (status or
heartbeat JSON), or a ``Rejected`` error whose ``reason`` is the short code it is counted by.

Pure functions of the topic, the payload and the clock: no sockets, so every rule is tested
directly. Reasons beyond the envelope's own (``EnvelopeError.reason``): ``oversize``,
``bad-topic``, ``bad-id``, ``wrong-deployment``, ``topic-mismatch``, ``foreign-model``,
``unknown-device``, ``bad-shape``, ``raw-unsupported``, ``future-time``, ``bad-status``,
``bad-heartbeat``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from epic.shared.manifest import Manifest
from epic.shared.wire import (
    HEARTBEAT,
    ID_PATTERN,
    LATENT,
    RAW,
    STATUS,
    EnvelopeError,
    TopicError,
    parse_topic,
    unpack,
)

__all__ = ["UNKNOWN_DEVICE", "Arrival", "DeviceReport", "Rejected", "Validator", "online_of"]

UNKNOWN_DEVICE = "?"
# An acquisition time this far ahead of our clock is a broken edge clock, not a fast edge.
FUTURE_LIMIT_NS = 5 * 60 * 10**9
MAX_JSON_BYTES = 64 * 1024


class Rejected(Exception):
    """A message the centre drops; ``device`` is who sent it, ``?`` when that is unknown."""

    def __init__(self, reason: str, device: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.device, self.detail = reason, device, detail


@dataclass(frozen=True)
class Arrival:
    """One device's latent (or raw block) for one sample, as it reached the centre."""

    kind: Literal["latent", "raw"]
    sample_id: str
    device_id: str
    data: np.ndarray = field(repr=False)
    acquired_ns: int
    encode_us: int
    arrival_ns: int
    wire_bytes: int


@dataclass(frozen=True)
class DeviceReport:
    """A device's status (retained; ``payload`` None when the retained message was cleared)
    or heartbeat."""

    kind: Literal["status", "heartbeat"]
    device_id: str
    payload: dict | None
    retained: bool = False


class Validator:
    """Checks messages against one deployment's manifest."""

    def __init__(
        self,
        manifest: Manifest,
        raw_supported: bool,
        max_envelope_bytes: int,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.manifest = manifest
        self.raw_supported = raw_supported
        self.max_bytes = max_envelope_bytes
        self.clock_ns = clock_ns
        geometry = manifest.config.get("geometry", {})
        shots = len(geometry.get("source_columns", (0, 17, 34, 52, 69)))
        nt = int(geometry.get("nt", 1000))
        self._latent_shape = {d.id: tuple(d.latent_shape) for d in manifest.devices}
        self._raw_shape = {
            d.id: (shots, nt, d.receivers[1] - d.receivers[0]) for d in manifest.devices
        }

    def message(
        self, topic: str, payload: bytes, retained: bool = False, arrival_ns: int | None = None
    ) -> Arrival | DeviceReport:
        """Check one message; raises ``Rejected`` and nothing else."""
        foreign = f"topic {topic!r} is not this deployment's"
        ours = self.manifest.deployment
        try:
            # The layout only: a bad id in the topic is counted below, as ``bad-id``.
            where = parse_topic(topic, check_ids=False)
        except TopicError as exc:
            if exc.deployment != ours:
                raise Rejected("bad-topic", UNKNOWN_DEVICE, foreign) from None
            sender = _device_of(exc.sender or "")
            raise Rejected("bad-topic", sender, f"topic {topic!r} is not one of ours") from None
        if where.deployment != ours:
            raise Rejected("bad-topic", UNKNOWN_DEVICE, foreign)
        # The layout guarantees the ids each kind has ("or" only tells the type checker).
        sample, device = where.sample or "", where.device or ""
        if where.kind in (LATENT, RAW):
            return self._envelope(where.kind, sample, device, payload, arrival_ns)
        if where.kind in (STATUS, HEARTBEAT):
            return self._report(where.kind, device, payload, retained)
        # A map: the centre's own topic, never a device's.
        raise Rejected("bad-topic", _device_of(sample), f"topic {topic!r} is not one of ours")

    def _envelope(
        self, kind: str, sample_id: str, device_id: str, payload: bytes, arrival_ns: int | None
    ) -> Arrival:
        sender = _device_of(device_id)
        if len(payload) > self.max_bytes:
            raise Rejected("oversize", sender, f"{len(payload)} bytes, limit {self.max_bytes}")
        for what, value in (("sample id", sample_id), ("device id", device_id)):
            if not ID_PATTERN.fullmatch(value):
                raise Rejected("bad-id", sender, f"{what} {value!r} in the topic")
        try:
            env = unpack(payload, self.max_bytes)
        except EnvelopeError as exc:
            raise Rejected(exc.reason, sender, exc.detail) from None
        if env.deployment != self.manifest.deployment:
            raise Rejected("wrong-deployment", sender, f"envelope for {env.deployment!r}")
        if (env.sample_id, env.device_id) != (sample_id, device_id):
            raise Rejected(
                "topic-mismatch",
                sender,
                f"envelope says {env.sample_id}/{env.device_id}, topic {sample_id}/{device_id}",
            )
        if env.model_hash != self.manifest.model_hash:
            raise Rejected(
                "foreign-model", sender, f"model {env.model_hash}, ours {self.manifest.model_hash}"
            )
        expected = (self._raw_shape if kind == "raw" else self._latent_shape).get(device_id)
        if expected is None:
            raise Rejected("unknown-device", sender, f"{device_id!r} is not in the manifest")
        if kind == "raw" and not self.raw_supported:
            raise Rejected("raw-unsupported", sender, "this model's encoders hold weights")
        if tuple(env.data.shape) != expected:
            raise Rejected("bad-shape", sender, f"{kind} {env.data.shape}, expected {expected}")
        now = self.clock_ns()
        if env.acquired_ns > now + FUTURE_LIMIT_NS:
            ahead = (env.acquired_ns - now) / 1e9
            raise Rejected("future-time", sender, f"acquired {ahead:.0f} s in the future")
        return Arrival(
            kind=kind,  # type: ignore[arg-type]
            sample_id=sample_id,
            device_id=device_id,
            data=env.data,
            acquired_ns=env.acquired_ns,
            encode_us=env.encode_us,
            arrival_ns=now if arrival_ns is None else arrival_ns,
            wire_bytes=env.wire_bytes,
        )

    def _report(self, kind: str, device_id: str, payload: bytes, retained: bool) -> DeviceReport:
        reason = f"bad-{kind}"
        if not ID_PATTERN.fullmatch(device_id):
            raise Rejected("bad-id", UNKNOWN_DEVICE, f"device id {device_id!r} in the topic")
        if kind == "status" and not payload:
            return DeviceReport("status", device_id, None, retained)  # retained status cleared
        if len(payload) > MAX_JSON_BYTES:
            raise Rejected(reason, device_id, f"{len(payload)} bytes of JSON")
        try:
            value = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Rejected(reason, device_id, f"not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise Rejected(reason, device_id, f"JSON {type(value).__name__}, not an object")
        if kind == "status" and online_of(value) is None:
            raise Rejected(reason, device_id, "no 'online' (bool) or 'status' (online|offline)")
        return DeviceReport(kind, device_id, value, retained)  # type: ignore[arg-type]


def _device_of(device_id: str) -> str:
    return device_id if ID_PATTERN.fullmatch(device_id) else UNKNOWN_DEVICE


def online_of(status: dict) -> bool | None:
    """A status says online either as ``"online": true`` or ``"status": "online"``."""
    online = status.get("online")
    if isinstance(online, bool):
        return online
    state = status.get("status", status.get("state"))
    if state in ("online", "offline"):
        return state == "online"
    return None
