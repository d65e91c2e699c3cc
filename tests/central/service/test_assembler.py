"""Every assembler rule (docs/architecture.md, "Assembler rules"), with a hand-driven clock."""

from __future__ import annotations

import numpy as np
import pytest

from epic.central.assembler import Assembler, Outcome
from epic.central.validate import Arrival

DEVICES = ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0  # monotonic seconds
        self.wall = 1_700_000_000 * 10**9  # ns

    def monotonic(self) -> float:
        return self.t

    def wall_ns(self) -> int:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.t += seconds
        self.wall += int(seconds * 1e9)


def arrival(sample: str, device: str, clock: FakeClock, acquired_ns: int | None = None) -> Arrival:
    return Arrival(
        kind="latent",
        sample_id=sample,
        device_id=device,
        data=np.zeros((8, 64), np.float32),
        acquired_ns=clock.wall if acquired_ns is None else acquired_ns,
        encode_us=0,
        arrival_ns=clock.wall,
        wire_bytes=560,
    )


def make(clock: FakeClock, **kw) -> tuple[Assembler, list[tuple[str, str, list[str]]]]:
    drops: list[tuple[str, str, list[str]]] = []
    options = dict(min_devices=3, deadline_ms=2000, t_dec_ms=500, clock=clock)
    options.update(kw)
    a = Assembler(DEVICES, on_drop=lambda *d: drops.append(d), **options)
    return a, drops


def test_complete_sample_is_ready_at_once_with_every_device() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    outcomes = [a.add(arrival("s1", d, clock)) for d in DEVICES]
    assert outcomes == [Outcome.OPENED] + [Outcome.ADDED] * 3 + [Outcome.COMPLETE]
    [ready] = a.take_ready(16)
    assert (ready.sample_id, ready.version, ready.partial) == ("s1", 1, False)
    assert ready.devices_used == DEVICES and ready.devices_missing == []
    assert a.depth == 0 and a.next_deadline() is None


def test_deadline_is_first_arrival_plus_t_minus_t_dec() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    a.add(arrival("s1", "dev-0", clock))
    assert a.next_deadline() == pytest.approx(clock.t + 1.5)  # 2000 - 500 ms
    clock.advance(1.0)
    a.add(arrival("s1", "dev-1", clock))  # later arrivals do not move it
    assert a.next_deadline() == pytest.approx(clock.t + 0.5)


def test_partial_at_deadline_with_enough_devices_names_the_missing() -> None:
    clock = FakeClock()
    a, drops = make(clock)
    for d in ("dev-0", "dev-2", "dev-4"):
        a.add(arrival("s1", d, clock))
    clock.advance(1.49)
    a.expire()
    assert a.take_ready(16) == []
    clock.advance(0.02)
    a.expire()
    [ready] = a.take_ready(16)
    assert ready.partial and ready.devices_missing == ["dev-1", "dev-3"]
    assert ready.devices_used == ["dev-0", "dev-2", "dev-4"]
    assert drops == []


def test_too_few_devices_at_deadline_is_dropped_and_counted() -> None:
    clock = FakeClock()
    a, drops = make(clock)
    a.add(arrival("s1", "dev-0", clock))
    a.add(arrival("s1", "dev-1", clock))
    clock.advance(2.0)
    a.expire()
    assert a.take_ready(16) == [] and a.depth == 0
    assert drops == [("s1", "too-few-devices", ["dev-0", "dev-1"])]
    # Its straggler is late, not the start of a new sample.
    assert a.add(arrival("s1", "dev-2", clock)) is Outcome.LATE
    assert a.depth == 0


def test_duplicates_are_ignored_before_and_after_decode() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    a.add(arrival("s1", "dev-0", clock))
    assert a.add(arrival("s1", "dev-0", clock)) is Outcome.DUPLICATE
    for d in DEVICES[1:]:
        a.add(arrival("s1", d, clock))
    [ready] = a.take_ready(16)
    assert len(ready.arrivals) == 5
    assert a.add(arrival("s1", "dev-3", clock)) is Outcome.DUPLICATE


def test_late_latent_refines_a_recent_map_as_the_next_version() -> None:
    clock = FakeClock()
    a, _ = make(clock, refine_window_s=60)
    for d in DEVICES[:4]:
        a.add(arrival("s1", d, clock))
    clock.advance(2.0)
    a.expire()
    [first] = a.take_ready(16)
    assert first.version == 1 and first.devices_missing == ["dev-4"]
    clock.advance(10.0)
    assert a.add(arrival("s1", "dev-4", clock)) is Outcome.REFINE
    [refined] = a.take_ready(16)
    assert refined.version == 2 and not refined.partial and refined.devices_used == DEVICES
    assert a.add(arrival("s1", "dev-4", clock)) is Outcome.DUPLICATE


def test_late_latents_waiting_for_the_decoder_join_one_refinement() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    for d in DEVICES[:3]:
        a.add(arrival("s1", d, clock))
    clock.advance(2.0)
    a.expire()
    a.take_ready(16)
    assert a.add(arrival("s1", "dev-3", clock)) is Outcome.REFINE
    assert a.add(arrival("s1", "dev-4", clock)) is Outcome.REFINE
    [refined] = a.take_ready(16)
    assert refined.version == 2 and refined.devices_missing == []


def test_late_after_the_refine_window_is_only_counted() -> None:
    clock = FakeClock()
    a, _ = make(clock, refine_window_s=5)
    for d in DEVICES[:3]:
        a.add(arrival("s1", d, clock))
    clock.advance(2.0)
    a.expire()
    a.take_ready(16)
    clock.advance(6.0)
    assert a.add(arrival("s1", "dev-3", clock)) is Outcome.LATE
    assert a.take_ready(16) == [] and a.depth == 0


def test_a_partial_sample_waiting_for_the_decoder_takes_a_device_that_arrives() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    for d in DEVICES[:3]:
        a.add(arrival("s1", d, clock))
    clock.advance(2.0)
    a.expire()  # ready as partial, not yet taken
    assert a.add(arrival("s1", "dev-3", clock)) is Outcome.ADDED
    [ready] = a.take_ready(16)
    assert ready.version == 1 and ready.devices_missing == ["dev-4"]


def test_buffer_is_bounded_and_evicts_the_oldest() -> None:
    clock = FakeClock()
    a, drops = make(clock, max_open=3)
    for k in range(5):
        a.add(arrival(f"s{k}", "dev-0", clock))
        clock.advance(0.01)
    assert a.depth == 3
    assert [d[:2] for d in drops] == [("s0", "evicted"), ("s1", "evicted")]
    assert a.add(arrival("s0", "dev-1", clock)) is Outcome.LATE  # no second life


def test_ready_samples_count_against_the_bound_while_the_decoder_is_busy() -> None:
    clock = FakeClock()
    a, drops = make(clock, max_open=2)
    for k in range(3):
        for d in DEVICES:
            a.add(arrival(f"s{k}", d, clock))
    assert a.ready_count == 2 and [d[:2] for d in drops] == [("s0", "evicted")]
    assert [r.sample_id for r in a.take_ready(16)] == ["s1", "s2"]


def test_take_ready_batches_in_ready_order_up_to_the_limit() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    for k in range(5):
        for d in DEVICES:
            a.add(arrival(f"s{k}", d, clock))
    assert [r.sample_id for r in a.take_ready(3)] == ["s0", "s1", "s2"]
    assert [r.sample_id for r in a.take_ready(3)] == ["s3", "s4"]


def test_synced_clock_counts_the_deadline_from_acquisition() -> None:
    clock = FakeClock()
    a, _ = make(clock, clock_mode="synced")
    acquired = clock.wall - 1_000_000_000  # recorded 1 s before it reached us
    a.add(arrival("s1", "dev-0", clock, acquired_ns=acquired))
    assert a.next_deadline() == pytest.approx(clock.t + 0.5)
    a.add(arrival("s2", "dev-0", clock, acquired_ns=clock.wall - 5 * 10**9))
    for d in ("dev-1", "dev-2"):
        a.add(arrival("s2", d, clock))
    a.expire()  # s2's deadline passed before its first latent came: decided at once
    assert [r.sample_id for r in a.take_ready(16)] == ["s2"]


def test_decoder_slower_than_t_leaves_no_wait() -> None:
    clock = FakeClock()
    a, _ = make(clock, deadline_ms=100, t_dec_ms=400)
    assert a.budget_ms == 0
    a.add(arrival("s1", "dev-0", clock))
    assert a.next_deadline() == pytest.approx(clock.t)


def test_remembered_ids_from_the_store_are_late() -> None:
    clock = FakeClock()
    a, _ = make(clock)
    a.remember_closed(["old"])
    assert a.add(arrival("old", "dev-0", clock)) is Outcome.LATE


def test_min_devices_beyond_the_deployment_is_refused() -> None:
    with pytest.raises(ValueError, match="min_devices"):
        Assembler(DEVICES, min_devices=6, deadline_ms=2000)


def test_a_full_buffer_counts_a_late_latent_but_evicts_nothing_for_it() -> None:
    clock = FakeClock()
    a, drops = make(clock, max_open=1)
    for d in DEVICES[:3]:
        a.add(arrival("s1", d, clock))
    clock.advance(2.0)
    a.expire()
    a.take_ready(16)
    a.add(arrival("s2", "dev-0", clock))  # the one place is taken
    assert a.add(arrival("s1", "dev-3", clock)) is Outcome.LATE
    assert a.depth == 1 and drops == []
