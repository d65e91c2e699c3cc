"""Log a recurring problem once per key per interval, with how many were held back.

A misbehaving device can send hundreds of bad messages a second; one line a minute per
reason says what is wrong without drowning the log (the counters keep the full count).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        self._log, self._interval, self._clock = logger, interval_s, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._max_keys = max_keys

    def warning(self, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``key`` was logged less than the interval ago.
        Returns whether it was logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        if key not in self._last and len(self._last) >= self._max_keys:
            # Keys come from a finite set of reasons; this only guards against a bug.
            self._last.pop(next(iter(self._last)))
        held = self._held.pop(key, 0)
        suffix = f" ({held} more like it since the last such line)" if held else ""
        self._last[key] = now
        self._log.warning(message + suffix, *args)
        return True
