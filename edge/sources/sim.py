"""``sim:FAMILY``: a simulated array firing one shot per time slot.

At ``rate`` Hz, slot ``k = floor(unix_time * rate)``; its shot is fired at ``k / rate`` (its
acquisition time), named ``FAMILY-<k>`` (``epic.shared.pool.sample_id``), and its content is
sample ``k % size`` of the cached pool. Devices started separately therefore agree on ids,
times and content for every slot. A device that falls behind skips to the current slot
(as a field recorder would: shots do not wait), counting what it skipped; with a fixed
``start_slot`` it replays from there without skipping (deterministic runs and tests).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from epic.edge.sources.base import Clock, Shot, Slot, Source, current_slot, slot_ns
from epic.shared.errors import OptionError
from epic.shared.pool import DEFAULT_SIZE, ShotPool, sample_id

__all__ = ["SimSource"]


class SimSource(Source):
    def __init__(
        self,
        family: str,
        receivers: tuple[int, int],
        rate: float,
        *,
        start_slot: int | None = None,
        pool_size: int = DEFAULT_SIZE,
        pool_seed: int = 0,
        cache_dir: Path | str | None = None,
        progress: bool = False,
        clock: Clock = time.time_ns,
    ) -> None:
        self.spec = f"sim:{family}"
        if not rate > 0:
            raise OptionError(self.spec, f"rate {rate} Hz: a simulated stream needs a rate > 0")
        if start_slot is not None and start_slot < 0:
            raise OptionError(self.spec, f"start slot {start_slot} must be >= 0")
        self.family = family
        self.receivers = receivers
        self.rate = rate
        self.start_slot = start_slot
        self.skipped = 0
        self._clock = clock
        self.pool = ShotPool.open(family, pool_size, pool_seed, cache_dir, progress)

    def slots(self) -> Iterator[Slot]:
        catch_up = self.start_slot is not None
        k = (
            self.start_slot
            if self.start_slot is not None
            else current_slot(self._clock(), self.rate) + 1
        )
        while True:
            if not catch_up:
                now = current_slot(self._clock(), self.rate)
                if now > k:
                    self.skipped += now - k
                    k = now
            yield Slot(sample_id(self.family, k), slot_ns(k, self.rate), k)
            k += 1

    def read(self, slot: Slot) -> Shot:
        index = self.pool.index_of(slot.key)
        return Shot(
            sample_id=slot.sample_id,
            acquired_ns=slot.due_ns,
            waveforms=self.pool.waveforms(index, self.receivers),
            velocity=self.pool.velocity(index),
            receivers=self.receivers,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "rate_hz": self.rate,
            "pool": {"family": self.family, "size": self.pool.size, "seed": self.pool.seed},
        }
