"""The reconnect pacing shared by the edge (jittered) and the centre (exact)."""

from __future__ import annotations

import random

import pytest

from epic.shared.wire import Backoff


def test_jittered_waits_double_up_to_the_cap() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(1))
    for bound in (0.5, 1.0, 2.0, 4.0, 4.0, 4.0):
        assert bound / 2 <= backoff.next_delay() <= bound
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_jitter_spreads_a_fleet() -> None:
    fleet = [Backoff(1.0, 8.0, random.Random(seed)).next_delay() for seed in range(20)]
    assert len(set(fleet)) == len(fleet)


def test_without_jitter_the_waits_are_exact() -> None:
    # The centre's pacing: 0.5 s doubling to 30 s, back to 0.5 s after a good connection.
    backoff = Backoff(0.5, 30.0, jitter=False)
    assert [backoff.next_delay() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize(("low", "high"), [(0, 1), (-1, 1), (2, 1)])
def test_bounds_are_checked(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="need 0 < low <= high"):
        Backoff(low, high)
