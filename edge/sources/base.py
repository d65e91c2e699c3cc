"""What every stream source gives the edge: planned slots, then the shots themselves.

A source is split in two steps so that waiting and reading happen in the right place:
``slots()`` is cheap (no data read; the producer iterates it on the event loop and sleeps
until each slot is due), ``read(slot)`` does the file or memory reads (the producer runs it
in a worker thread). Sample ids come from the shot (a time slot, a file and index, a field
record number), never from a device's counter, so every device names a shot alike.
"""

from __future__ import annotations

import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from epic.shared.wire import ID_CHARS

__all__ = ["Clock", "Pacer", "Shot", "Slot", "Source", "safe_id_part", "slot_ns"]

Clock = Callable[[], int]  # UTC nanoseconds; time.time_ns by default, injected by tests
_UNSAFE = re.compile(f"[^{ID_CHARS}]")  # what an id may not hold


@dataclass(frozen=True)
class Shot:
    """One sample as a device sees it.

    ``waveforms`` is ``[shots, time, receivers]`` float32 for the columns ``receivers``
    (``(first, last_exclusive)``): the device's own block when the source was opened for
    one, else all 70. ``velocity`` is the true map ``[70, 70]`` in m/s when the source knows it.
    """

    sample_id: str
    acquired_ns: int
    waveforms: np.ndarray = field(repr=False)
    velocity: np.ndarray | None = field(default=None, repr=False)
    receivers: tuple[int, int] = (0, 70)


@dataclass(frozen=True)
class Slot:
    """A shot the source will deliver, before any data is read.

    ``due_ns``: when it is acquired (the producer waits until then); 0 means now, as fast as
    the device can go. ``key`` locates the data for ``read``.
    """

    sample_id: str
    due_ns: int
    key: Any = None


def slot_ns(slot: int, rate: float) -> int:
    """The UTC time (ns) at which time slot ``slot`` of a ``rate`` Hz stream starts.

    Exact rational arithmetic: float rounding would shift boundaries by ~100 ns at today's
    slot numbers, and every device must draw the same grid."""
    return round(Fraction(slot * 1_000_000_000) / Fraction(rate))


def current_slot(now_ns: int, rate: float) -> int:
    """The slot a ``rate`` Hz stream is in at ``now_ns``."""
    return math.floor(Fraction(now_ns) * Fraction(rate) / 1_000_000_000)


def safe_id_part(text: str, limit: int) -> str:
    """``text`` made fit for an id (``[A-Za-z0-9_.-]``, at most ``limit`` characters)."""
    return _UNSAFE.sub("_", text)[: max(limit, 1)] or "_"


class Pacer:
    """Due times for a replay at ``rate`` Hz, one slot apart from the next slot boundary.

    Aligned to the slot grid, devices started within the same slot stamp a shot alike.
    ``rate <= 0``: as fast as possible (every due time is 0, acquired when read).
    """

    def __init__(self, rate: float, clock: Clock = time.time_ns) -> None:
        self.rate = rate
        self._clock = clock
        self._first: int | None = None
        self._count = 0

    def next_due(self) -> int:
        if self.rate <= 0:
            return 0
        if self._first is None:
            self._first = current_slot(self._clock(), self.rate) + 1
        due = slot_ns(self._first + self._count, self.rate)
        self._count += 1
        return due


class Source(ABC):
    """A stream of shots for one device (``receivers``: the columns it keeps)."""

    spec: str
    receivers: tuple[int, int]
    # Slots passed over because the device fell behind the rate (time-slotted sources).
    skipped: int = 0

    @abstractmethod
    def slots(self) -> Iterator[Slot]:
        """The shots to deliver, in order; may consult the clock; ends for a finite replay."""

    @abstractmethod
    def read(self, slot: Slot) -> Shot:
        """Read the shot of ``slot`` (blocking: run it in a worker thread).

        Raises ``DataError`` for a sample that cannot be used (the producer skips it)."""

    def describe(self) -> dict[str, Any]:
        """What the device's status says about its source."""
        return {"spec": self.spec}

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release files; the default holds none."""

    def _acquired(self, slot: Slot) -> int:
        return slot.due_ns or time.time_ns()
