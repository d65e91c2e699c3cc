"""The LTE uplink energy model (Huang et al., MobiSys 2012) against hand-computed values."""

from __future__ import annotations

import math

import pytest

from epic.lab.bench.energy import (
    TAIL_TIME_S,
    EnergyFigures,
    per_sample_energy,
    promotion_energy_mj,
    tail_energy_mj,
    transmit_energy_mj,
    uplink_power_mw,
)


def test_hand_computed_transmit_energy() -> None:
    # 1 Mbit in 1 s: t_u = 1 Mbit/s, P = 438.39 + 1288.04 mW, for 1 s.
    assert transmit_energy_mj(125_000, 1.0) == pytest.approx(1726.43)
    # 2 Mbit in 0.5 s: t_u = 4 Mbit/s, P = 4 * 438.39 + 1288.04 = 3041.60 mW, for 0.5 s.
    assert transmit_energy_mj(250_000, 0.5) == pytest.approx(1520.80)
    # The EPIC raw block (5 x 1000 x 14 float32 = 280 kB) at 4g's Mathis rate, 2.023 Mbit/s:
    # 2.24 Mbit * 438.39 + 1288.04 mW * (2.24 / 2.023035) s.
    seconds = 280_000 * 8 / 2.023035e6
    assert transmit_energy_mj(280_000, seconds) == pytest.approx(
        2.24 * 438.39 + 1288.04 * 1.1072473, rel=1e-6
    )
    assert uplink_power_mw(0.0) == 1288.04
    assert transmit_energy_mj(0, 0.0) == 0.0


def test_energy_rises_with_bytes_and_with_time() -> None:
    sizes = [1_000, 10_000, 100_000, 1_000_000]
    by_size = [transmit_energy_mj(n, 0.2) for n in sizes]
    assert by_size == sorted(by_size) and len(set(by_size)) == len(by_size)
    times = [0.01, 0.1, 1.0, 10.0]
    by_time = [transmit_energy_mj(100_000, t) for t in times]
    assert by_time == sorted(by_time) and len(set(by_time)) == len(by_time)
    # Per bit the throughput term is fixed (438.39 mJ per Mbit); time costs 1288.04 mW.
    assert transmit_energy_mj(125_000, 2.0) - transmit_energy_mj(125_000, 1.0) == pytest.approx(
        1288.04
    )


def test_the_tail_is_amortized_over_the_gap_between_samples() -> None:
    assert tail_energy_mj() == pytest.approx(1060.0 * 11.576)  # a lone transmission: all of it
    assert tail_energy_mj(2.0) == pytest.approx(2120.0)  # the next one comes 2 s later
    assert tail_energy_mj(0.0) == 0.0
    assert tail_energy_mj(TAIL_TIME_S) == tail_energy_mj(100.0) == tail_energy_mj(math.inf)
    # Samples every 1 s, 0.25 s of sending: 0.75 s of tail each, no promotion.
    figures = per_sample_energy(125_000, 0.25, interval_s=1.0)
    expected_transmit = 438.39 * 1.0 + 1288.04 * 0.25
    assert figures == EnergyFigures(
        transmit_mj=pytest.approx(expected_transmit),
        tail_mj=pytest.approx(1060.0 * 0.75),
        promotion_mj=0.0,
        total_mj=pytest.approx(expected_transmit + 795.0),
    )
    # A whole period's radio energy when the radio never idles: sending plus tail power.
    # Over N samples the tails add up to the time spent not sending, never N full tails.
    assert figures.tail_mj * 10 == pytest.approx(1060.0 * (10 * 1.0 - 10 * 0.25))


def test_a_gap_longer_than_the_tail_pays_the_whole_tail_and_a_promotion() -> None:
    promotion = 1210.7 * 0.2601
    assert promotion_energy_mj(TAIL_TIME_S) == 0.0
    assert promotion_energy_mj(TAIL_TIME_S + 0.001) == pytest.approx(promotion)
    lone = per_sample_energy(1_000, 0.01)
    assert lone.tail_mj == pytest.approx(1060.0 * 11.576)
    assert lone.promotion_mj == pytest.approx(promotion)
    assert lone.total_mj == pytest.approx(lone.transmit_mj + lone.tail_mj + promotion)
    # A backlogged edge (sending longer than the sampling interval) has no tail at all.
    busy = per_sample_energy(1_000_000, 2.0, interval_s=1.0)
    assert (busy.tail_mj, busy.promotion_mj, busy.total_mj) == (0.0, 0.0, busy.transmit_mj)


def test_the_tail_share_never_falls_as_the_interval_grows() -> None:
    intervals = [0.1, 0.5, 1.0, 5.0, 11.0, 11.576, 12.0, 60.0]
    totals = [per_sample_energy(10_000, 0.05, interval_s=i).total_mj for i in intervals]
    assert totals == sorted(totals)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: transmit_energy_mj(-1, 1.0), "nbytes"),
        (lambda: transmit_energy_mj(10, -1.0), "seconds"),
        (lambda: transmit_energy_mj(10, 0.0), "0 seconds"),
        (lambda: transmit_energy_mj(10, math.inf), "finite"),
        (lambda: tail_energy_mj(math.nan), "gap_s"),
        (lambda: per_sample_energy(10, 1.0, interval_s=-2.0), "interval_s"),
    ],
)
def test_bad_input_is_refused_by_name(call: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        call()  # type: ignore[operator]
