"""How long to wait before connecting to the broker again: one pacing for edge and centre."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Exponential backoff: the wait ``d`` doubles from ``low`` up to ``high``; ``reset()``
    after a good connection starts it again at ``low``.

    With ``jitter`` (the edge's), each wait is drawn from [d/2, d]: it keeps a fleet of edges
    from reconnecting in lockstep after their broker comes back. Without it (the centre's,
    a single client) each wait is ``d`` exactly.
    """

    def __init__(
        self,
        low: float = 0.5,
        high: float = 10.0,
        rng: random.Random | None = None,
        *,
        jitter: bool = True,
    ) -> None:
        if not 0 < low <= high:
            raise ValueError(f"backoff {low}..{high} s: need 0 < low <= high")
        self.low, self.high = low, high
        self.jitter = jitter
        self._next = low
        self._rng = rng or random.Random()

    def reset(self) -> None:
        self._next = self.low

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds."""
        d = self._next
        self._next = min(self.high, d * 2)
        return self._rng.uniform(d / 2, d) if self.jitter else d
