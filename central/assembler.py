"""EPIC-Mgmt: the buffer that turns arrivals into samples ready to decode (docs/architecture.md,
"Assembler rules").

- A sample's entry opens at its first latent; its deadline is that arrival plus
  ``T - t_dec`` (``clock="synced"``: the envelope's acquisition time plus ``T - t_dec``).
- Every *alive* device in (and at least ``min_devices``): ready now. Deadline with at least
  ``min_devices``: ready as partial (the missing devices are masked by the decoder).
  Fewer: dropped (``too-few-devices``).
- Liveness (``set_alive``, fed by the device registry: a status that says offline, a Last
  Will, heartbeats gone stale): a sample waits for the devices alive when it opened. One
  that dies while the sample waits is no longer waited for; one that comes back is waited
  for from its next sample. A dead device's latent is still used: it joins a waiting
  sample, or refines a decoded one like any late latent. A device not heard from yet counts
  as alive until the registry calls it late, so the deadline, not a guess, bounds the first
  seconds of a centre that has just started.
- The same device twice for a sample: ``DUPLICATE``, ignored. A latent for a sample already
  handed to the decoder: ``LATE``; within ``refine_window_s`` of that decode and from a
  device it lacked, it makes the sample ready again as a refined version (``REFINE``).
- At most ``max_open`` samples wait (open or ready); a new one evicts the oldest
  (``evicted``). Ready samples wait here, not in the decoder, so the bound covers them.

Pure logic with an injected clock: the service drives it from one task (``add`` on each
arrival, ``expire`` when ``next_deadline`` comes) and the tests drive it by hand.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Protocol

from epic.central.validate import Arrival

__all__ = ["Assembler", "Clock", "Outcome", "ReadySample", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall_ns(self) -> int: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall_ns(self) -> int:
        return time.time_ns()


class Outcome(Enum):
    OPENED = "opened"  # first latent of a new sample
    ADDED = "added"  # another device of a waiting sample
    COMPLETE = "complete"  # the last expected device: ready now
    DUPLICATE = "duplicate"  # this device already gave this sample
    LATE = "late"  # the sample was already decoded (or dropped): counted, not used
    REFINE = "refine"  # late, and the sample is ready again as a refined version


@dataclass(frozen=True)
class ReadySample:
    """What the decoder gets: one sample's arrivals and which devices are missing."""

    sample_id: str
    version: int
    arrivals: dict[str, Arrival] = field(repr=False)
    devices_used: list[str]
    devices_missing: list[str]
    first_arrival_ns: int
    last_arrival_ns: int
    acquired_ns: int | None

    @property
    def partial(self) -> bool:
        return bool(self.devices_missing)


@dataclass
class _Entry:
    sample_id: str
    version: int
    arrivals: dict[str, Arrival]
    first_arrival_ns: int
    expected: set[str] = field(default_factory=set)  # alive when it opened, and still alive
    ready: bool = False
    seq: int = -1  # its deadline's key in the heap


@dataclass
class _Record:
    """A sample handed to the decoder, kept for the refine window."""

    version: int
    arrivals: dict[str, Arrival]
    taken: float
    pending: _Entry | None = None  # a refined version waiting in the buffer


DropHandler = Callable[[str, str, list[str]], None]


class Assembler:
    def __init__(
        self,
        devices: Sequence[str],
        min_devices: int,
        deadline_ms: float,
        *,
        t_dec_ms: float = 0.0,
        clock: Clock | None = None,
        clock_mode: Literal["arrival", "synced"] = "arrival",
        max_open: int = 256,
        refine_window_s: float = 60.0,
        closed_memory: int = 16_384,
        on_drop: DropHandler | None = None,
    ) -> None:
        if not 1 <= min_devices <= len(devices):
            raise ValueError(f"min_devices={min_devices}: must be 1-{len(devices)}")
        self.devices = list(devices)
        self.min_devices = min_devices
        self.deadline_ms = deadline_ms
        self.t_dec_ms = t_dec_ms  # the service updates it from the decoder's rolling p95
        self.clock = clock or SystemClock()
        self.clock_mode = clock_mode
        self.max_open = max_open
        self.refine_window_s = refine_window_s
        self.on_drop: DropHandler = on_drop or (lambda sample, reason, devices: None)
        self._open: OrderedDict[str, _Entry] = OrderedDict()  # oldest first
        self._ready: deque[str] = deque()
        self._deadlines: list[tuple[float, int, str]] = []  # heap; stale items skipped
        self._seq = itertools.count()
        self._decoded: OrderedDict[str, _Record] = OrderedDict()
        # Ids decided (decoded, dropped, evicted): their stragglers are late, not new samples.
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._closed_memory = closed_memory
        self._dead: set[str] = set()  # devices known not to be alive (set_alive)

    # -- state ----------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Samples waiting, open or ready."""
        return len(self._open)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    @property
    def budget_ms(self) -> float:
        return max(0.0, self.deadline_ms - self.t_dec_ms)

    def alive(self) -> list[str]:
        """The devices a new sample waits for."""
        return [d for d in self.devices if d not in self._dead]

    def set_alive(self, device: str, alive: bool) -> bool:
        """Record a device's liveness; True when samples became ready because of it (the
        caller wakes the decoder: no arrival will). A death stops every waiting sample from
        waiting for that device; a return counts from the next sample on."""
        if alive:
            self._dead.discard(device)
            return False
        if device not in self.devices or device in self._dead:
            return False
        self._dead.add(device)
        woke = False
        for entry in self._open.values():
            if entry.ready or entry.version > 1:
                continue
            entry.expected.discard(device)
            if self._complete(entry):
                self._mark_ready(entry)
                woke = True
        return woke

    def _complete(self, entry: _Entry) -> bool:
        return len(entry.arrivals) >= self.min_devices and entry.expected <= entry.arrivals.keys()

    def remember_closed(self, sample_ids: Sequence[str]) -> None:
        """Mark ids as already decoded (from the store, after a restart)."""
        for sample_id in sample_ids:
            self._close(sample_id)

    # -- arrivals -------------------------------------------------------------------------
    def add(self, arrival: Arrival, *, restored: bool = False) -> Outcome:
        """``restored``: a latent the centre kept across a restart (``epic.central.pending``).
        A sample it opens gets a whole ``T - t_dec`` from now, in either clock mode: the
        rest of its latents, sent while the centre was down, wait in the broker's queue and
        come only once it reads again, so counting from the first arrival (or the shot)
        would decode it at once, partial, just before they come. Its ``first_arrival_ns``
        stays the original one, so the map's timings say how long it really took."""
        sid, dev = arrival.sample_id, arrival.device_id
        entry = self._open.get(sid)
        if entry is not None:
            if dev in entry.arrivals:
                return Outcome.DUPLICATE
            entry.arrivals[dev] = arrival
            if entry.version > 1:
                return Outcome.REFINE  # joins the refined version still waiting
            if entry.ready or not self._complete(entry):
                return Outcome.ADDED  # a ready one waiting for the decoder takes it along
            self._mark_ready(entry)
            return Outcome.COMPLETE
        record = self._decoded.get(sid)
        if record is not None:
            if dev in record.arrivals:
                return Outcome.DUPLICATE
            recent = self.clock.monotonic() - record.taken <= self.refine_window_s
            return Outcome.REFINE if recent and self._refine(sid, record, arrival) else Outcome.LATE
        if sid in self._closed:
            return Outcome.LATE
        return Outcome.COMPLETE if self._open_entry(arrival, restored).ready else Outcome.OPENED

    def _open_entry(self, arrival: Arrival, restored: bool = False) -> _Entry:
        while len(self._open) >= self.max_open:
            old_id, old = self._open.popitem(last=False)
            if old.ready:
                self._ready.remove(old_id)
            self._forget_pending(old_id)
            self._close(old_id)
            self.on_drop(old_id, "evicted", self._order(old.arrivals))
        entry = _Entry(
            arrival.sample_id,
            1,
            {arrival.device_id: arrival},
            arrival.arrival_ns,
            set(self.alive()),
        )
        self._open[arrival.sample_id] = entry
        if self._complete(entry):
            self._mark_ready(entry)
            return entry
        budget_s = self.budget_ms / 1000.0
        now = self.clock.monotonic()
        if self.clock_mode == "synced" and not restored:
            # The deadline belongs to the shot, not to when its first latent got here.
            behind_s = (self.clock.wall_ns() - arrival.acquired_ns) / 1e9
            deadline = now + budget_s - behind_s
        else:
            deadline = now + budget_s
        entry.seq = next(self._seq)
        heapq.heappush(self._deadlines, (deadline, entry.seq, arrival.sample_id))
        return entry

    def _refine(self, sid: str, record: _Record, arrival: Arrival) -> bool:
        """Make (or extend) the sample's next version; False when the buffer has no room."""
        if record.pending is not None and sid in self._open:
            record.pending.arrivals[arrival.device_id] = arrival
            return True
        entry = _Entry(
            sid,
            record.version + 1,
            {**record.arrivals, arrival.device_id: arrival},
            min(a.arrival_ns for a in record.arrivals.values()),
        )
        if len(self._open) >= self.max_open:
            return False  # a refinement never evicts a first decode
        self._open[sid] = entry
        record.pending = entry
        self._mark_ready(entry)
        return True

    def _mark_ready(self, entry: _Entry) -> None:
        entry.ready = True
        self._ready.append(entry.sample_id)

    # -- time -----------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest pending deadline."""
        while self._deadlines:
            deadline, seq, sid = self._deadlines[0]
            entry = self._open.get(sid)
            if entry is not None and not entry.ready and entry.seq == seq:
                return deadline
            heapq.heappop(self._deadlines)  # decided already
        return None

    def expire(self) -> None:
        """Decide every sample whose deadline has passed."""
        now = self.clock.monotonic()
        while (deadline := self.next_deadline()) is not None and deadline <= now:
            _, _, sid = heapq.heappop(self._deadlines)
            entry = self._open[sid]
            if len(entry.arrivals) >= self.min_devices:
                self._mark_ready(entry)
            else:
                del self._open[sid]
                self._close(sid)
                self.on_drop(sid, "too-few-devices", self._order(entry.arrivals))
        while self._decoded:
            sid, record = next(iter(self._decoded.items()))
            if now - record.taken <= self.refine_window_s or record.pending is not None:
                break
            del self._decoded[sid]

    # -- hand-over ------------------------------------------------------------------------
    def take_ready(self, limit: int) -> list[ReadySample]:
        """Up to ``limit`` ready samples, in the order they became ready."""
        taken: list[ReadySample] = []
        now = self.clock.monotonic()
        while self._ready and len(taken) < limit:
            sid = self._ready.popleft()
            entry = self._open.pop(sid)
            record = self._decoded.get(sid)
            if record is None:
                self._decoded[sid] = _Record(entry.version, dict(entry.arrivals), now)
                while len(self._decoded) > self.max_open:
                    self._decoded.popitem(last=False)
            else:
                record.version, record.arrivals = entry.version, dict(entry.arrivals)
                record.pending = None
            self._close(sid)
            taken.append(self._ready_sample(entry))
        return taken

    def _ready_sample(self, entry: _Entry) -> ReadySample:
        arrivals = entry.arrivals
        acquired = [a.acquired_ns for a in arrivals.values() if a.acquired_ns > 0]
        return ReadySample(
            sample_id=entry.sample_id,
            version=entry.version,
            arrivals=dict(arrivals),
            devices_used=self._order(arrivals),
            devices_missing=[d for d in self.devices if d not in arrivals],
            first_arrival_ns=entry.first_arrival_ns,
            last_arrival_ns=max(a.arrival_ns for a in arrivals.values()),
            acquired_ns=min(acquired) if acquired else None,
        )

    # -- helpers --------------------------------------------------------------------------
    def _order(self, arrivals: dict[str, Arrival]) -> list[str]:
        return [d for d in self.devices if d in arrivals]

    def _forget_pending(self, sid: str) -> None:
        record = self._decoded.get(sid)
        if record is not None:
            record.pending = None

    def _close(self, sid: str) -> None:
        self._closed[sid] = None
        self._closed.move_to_end(sid)
        while len(self._closed) > self._closed_memory:
            self._closed.popitem(last=False)
