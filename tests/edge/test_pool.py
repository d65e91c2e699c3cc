"""The shared shot pool: ids, truth lookup, the disk cache, and one simulation for many."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.errors import OptionError
from epic.shared.physics.families import generate_batch
from epic.shared.pool import ShotPool, default_cache_dir, parse_sample_id, sample_id
from tests.edge.conftest import FAMILY, POOL_SIZE, REPO


def test_sample_ids_round_trip_and_reject_foreign_ids() -> None:
    assert sample_id("flatfault-a", 1712) == "flatfault-a-1712"
    assert parse_sample_id("flatfault-a-1712") == ("flatfault-a", 1712)
    assert parse_sample_id("curvevel-b-0") == ("curvevel-b", 0)
    for foreign in ("ffid-12", "flatfault-a", "flatfault-a-", "flatfault-a-x1", "nope-3", ""):
        assert parse_sample_id(foreign) is None
    with pytest.raises(ValueError, match="unknown family"):
        sample_id("nope", 1)


def test_pool_holds_the_simulator_output_and_maps_slots_to_samples(pool: ShotPool) -> None:
    assert pool.size == POOL_SIZE and not pool.created
    # The pool folder is an OpenFWI dataset: the simulator's own maps, in order.
    data = OpenFWIDataset(pool.folder)
    np.testing.assert_array_equal(data.raw(1)[1][0], pool.velocity(1))
    np.testing.assert_array_equal(pool.velocity(0), generate_batch(FAMILY, 0, 0, 1)[0, 0])
    full = pool.waveforms(1)
    assert full.shape == (5, 1000, 70) and full.dtype == np.float32
    np.testing.assert_array_equal(pool.waveforms(1, (14, 28)), full[..., 14:28])
    assert pool.index_of(7) == 1
    np.testing.assert_array_equal(pool.truth_for(f"{FAMILY}-7"), pool.velocity(1))
    assert pool.truth_for("curvevel-a-7") is None  # another family's id
    assert pool.truth_for("ffid-7") is None


def test_second_open_reads_the_cache(pool: ShotPool, epic_cache: Path) -> None:
    again = ShotPool.open(FAMILY, size=POOL_SIZE, cache_dir=epic_cache / "pool")
    assert not again.created and again.folder == pool.folder
    meta = json.loads((pool.folder / "epic-dataset.json").read_text())
    assert (meta["family"], meta["samples"], meta["seed"]) == (FAMILY, POOL_SIZE, 0)


def test_cache_dir_follows_epic_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EPIC_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "pool"
    monkeypatch.delenv("EPIC_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "epic" / "pool"


def test_bad_pool_requests_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="unknown family"):
        ShotPool.open("nope", cache_dir=tmp_path)
    with pytest.raises(OptionError, match="pool size"):
        ShotPool.open(FAMILY, size=0, cache_dir=tmp_path)


_OPEN = """
import sys, time, torch
torch.set_num_threads(1)
from epic.shared.pool import ShotPool
print("ready", flush=True)
sys.stdin.readline()  # all processes start opening together
pool = ShotPool.open("{family}", size=1, seed=5, cache_dir=sys.argv[1])
print("created" if pool.created else "found", float(abs(pool.waveforms(0)).sum()), flush=True)
"""


@pytest.mark.slow
def test_concurrent_opens_simulate_the_pool_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    code = _OPEN.format(family=FAMILY)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for _ in range(4)
    ]
    try:
        for p in procs:  # imports done everywhere before anyone opens
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    words = [out.split() for out, _ in outs]
    assert sorted(w[0] for w in words) == ["created", "found", "found", "found"]
    assert len({w[1] for w in words}) == 1  # everyone reads the same shot
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers == []
