"""Stream sources: ids derived from the shot, the device's columns, pacing, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import segyio

from epic.edge.sources import Source, open_source
from epic.edge.sources.base import Clock, Pacer, current_slot, slot_ns
from epic.edge.sources.segy import write_segy
from epic.shared.errors import DataError, OptionError, UserError
from epic.shared.pool import ShotPool
from tests.edge.conftest import FAMILY, POOL_SIZE

RATE = 4.0
T0 = 1_700_000_000_123_456_789  # a fixed "now" for the injected clock


def sim(receivers: tuple[int, int], epic_cache: Path, clock: Clock, **kw: Any) -> Source:
    return open_source(
        f"sim:{FAMILY}",
        receivers,
        RATE,
        pool_size=POOL_SIZE,
        cache_dir=epic_cache / "pool",
        clock=clock,
        **kw,
    )


def test_slot_arithmetic() -> None:
    k = current_slot(T0, RATE)
    assert k == int(T0 / 1e9 * RATE) and slot_ns(k, RATE) <= T0 < slot_ns(k + 1, RATE)
    assert slot_ns(6, 4.0) == 1_500_000_000


def test_sim_devices_agree_on_ids_times_and_content(epic_cache: Path, pool: ShotPool) -> None:
    """Two devices (separate sources, as in separate processes) at the same moment."""
    a = sim((0, 14), epic_cache, clock=lambda: T0)
    b = sim((56, 70), epic_cache, clock=lambda: T0 + 5_000_000)  # started 5 ms later
    slots_a, slots_b = a.slots(), b.slots()
    first = current_slot(T0, RATE) + 1
    for k in range(first, first + 3):
        sa, sb = next(slots_a), next(slots_b)
        assert sa.sample_id == sb.sample_id == f"{FAMILY}-{k}"
        assert sa.due_ns == sb.due_ns == slot_ns(k, RATE)
        shot_a, shot_b = a.read(sa), b.read(sb)
        full = pool.waveforms(k % POOL_SIZE)
        np.testing.assert_array_equal(shot_a.waveforms, full[..., 0:14])
        np.testing.assert_array_equal(shot_b.waveforms, full[..., 56:70])
        assert shot_a.acquired_ns == shot_b.acquired_ns == sa.due_ns
        np.testing.assert_array_equal(shot_a.velocity, pool.velocity(k % POOL_SIZE))
        assert shot_a.receivers == (0, 14)


def test_sim_skips_slots_it_fell_behind_on_and_counts_them(epic_cache: Path) -> None:
    now = [T0]
    source = sim((0, 14), epic_cache, clock=lambda: now[0])
    slots = source.slots()
    first = next(slots)
    now[0] = first.due_ns + 3 * 250_000_000 + 1  # 3 slots later (4 Hz)
    late = next(slots)
    assert late.key == first.key + 3 and source.skipped == 2


def test_sim_start_slot_replays_without_skipping(epic_cache: Path) -> None:
    now = [T0]
    source = sim((0, 14), epic_cache, clock=lambda: now[0], start_slot=5)
    slots = source.slots()
    ids = [next(slots).sample_id]
    now[0] += 10 * 250_000_000  # even far behind, nothing is skipped
    ids += [next(slots).sample_id for _ in range(2)]
    assert ids == [f"{FAMILY}-5", f"{FAMILY}-6", f"{FAMILY}-7"]
    assert source.skipped == 0


def test_openfwi_replay_ids_columns_and_velocity(tiny_dataset: Path) -> None:
    source = open_source(f"openfwi:{tiny_dataset}", (14, 28), 0.0)
    slots = list(source.slots())
    ids = [s.sample_id for s in slots]
    assert ids == [
        "flatfault-data1-0",
        "flatfault-data1-1",
        "flatfault-data1-2",
        "flatfault-data2-0",
        "flatfault-data2-1",
    ]
    assert all(s.due_ns == 0 for s in slots)  # rate 0: as fast as possible
    shot = source.read(slots[3])
    data = np.load(tiny_dataset / "data" / "data2.npy")
    model = np.load(tiny_dataset / "model" / "model2.npy")
    np.testing.assert_array_equal(shot.waveforms, data[0, :, :, 14:28])
    np.testing.assert_array_equal(shot.velocity, model[0, 0])
    assert shot.acquired_ns > 0


def test_replays_at_a_rate_are_aligned_to_the_slot_grid() -> None:
    pacer = Pacer(2.0, clock=lambda: T0)
    first = current_slot(T0, 2.0) + 1
    assert [pacer.next_due() for _ in range(3)] == [slot_ns(first + i, 2.0) for i in range(3)]


def _shuffled_segy(path: Path, records: dict[int, np.ndarray], seed: int) -> None:
    """Traces in random order, written with plain segyio (not our writer)."""
    order = [(ffid, s, r) for ffid in records for s in range(5) for r in range(70)]
    rng = np.random.default_rng(seed)
    rng.shuffle(order)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = 1, list(range(1000)), len(order)  # IBM floats
    with segyio.create(str(path), spec) as f:
        for i, (ffid, s, r) in enumerate(order):
            f.header[i] = {
                segyio.su.fldr: ffid,
                segyio.su.tracf: r + 1,
                segyio.su.sx: [0, 170, 340, 520, 690][s],
                segyio.su.ep: 1,
            }
            f.trace[i] = np.ascontiguousarray(records[ffid][s, :, r])


def test_segy_round_trip_groups_traces_by_field_record(tmp_path: Path, pool: ShotPool) -> None:
    a, b = pool.waveforms(0), pool.waveforms(1)
    write_segy(tmp_path / "line-1.sgy", {101: a, 102: b})  # two records in one file
    _shuffled_segy(tmp_path / "line-2.segy", {7: b}, seed=1)  # one, in any trace order
    source = open_source(f"segy:{tmp_path}", (28, 42), 0.0)
    slots = list(source.slots())
    assert [s.sample_id for s in slots] == ["ffid-7", "ffid-101", "ffid-102"]
    shots = [source.read(s) for s in slots]
    np.testing.assert_array_equal(shots[1].waveforms, a[..., 28:42])
    np.testing.assert_array_equal(shots[2].waveforms, b[..., 28:42])
    # IBM floats keep about 6 significant digits.
    np.testing.assert_allclose(shots[0].waveforms, b[..., 28:42], rtol=1e-5, atol=1e-9)
    assert shots[0].velocity is None
    source.close()
    # Any device reading the same files names the records alike.
    other = open_source(f"segy:{tmp_path / 'line-1.sgy'}", (0, 14), 0.0)
    assert [s.sample_id for s in other.slots()] == ["ffid-101", "ffid-102"]
    other.close()


def test_segy_record_with_a_missing_trace_is_refused(tmp_path: Path, pool: ShotPool) -> None:
    path = write_segy(tmp_path / "bad.sgy", {5: pool.waveforms(0)})
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        f.header[3] = {segyio.TraceField.TraceNumber: 4 + 1}  # channel 4 twice, 3 missing
    with pytest.raises(DataError, match="field record 5 lacks or repeats"):
        open_source(f"segy:{path}", (0, 14), 0.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("flatfault-a", "source must be"),
        ("kafka:topic", "source must be"),
        ("sim:", "source must be"),
        ("sim:nope", "unknown family"),
        ("openfwi:/no/such/folder", "no such folder"),
        ("segy:/no/such/file.sgy", "no such SEG-Y"),
    ],
)
def test_bad_source_strings_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:  # a bad string or a missing file
        open_source(spec, (0, 14), 1.0)
    assert "\n" not in str(info.value)


def test_start_slot_is_for_sim_only(tiny_dataset: Path) -> None:
    with pytest.raises(OptionError, match="sim: sources only"):
        open_source(f"openfwi:{tiny_dataset}", (0, 14), 1.0, start_slot=3)
