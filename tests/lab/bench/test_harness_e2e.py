"""``epic bench`` for real, small: broker, centre, 5 edge processes and 5 link proxies per
model, EPIC and centralized InversionNet, 2 samples each, link ``none``."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from epic.lab.bench.document import MODEL_KEYS, check_schema


@pytest.mark.slow
def test_bench_runs_both_pipelines_and_writes_the_contract(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPIC_CACHE", str(tmp_path / "cache"))  # the children inherit it
    out = tmp_path / "bench.json"
    started = time.monotonic()
    code, stdout, stderr = cli(
        "bench",
        "--link",
        "none",
        "--models",
        "epic,inversionnet",
        "--edges",
        "5",
        "--samples",
        "2",
        "--rate",
        "2",
        "--pool-size",
        "1",
        "--lead-s",
        "10",
        "--no-robustness",
        "--no-progress",
        "--workdir",
        str(tmp_path / "run"),
        "--json",
        str(out),
        "--md",
        str(tmp_path / "bench.md"),
    )
    elapsed = time.monotonic() - started
    assert code == 0, stderr
    doc = json.loads(out.read_text())
    assert check_schema(doc) == []
    assert (doc["link"], doc["edges"], doc["samples"]) == ("none", 5, 2)
    for model in ("epic", "inversionnet"):
        figures = doc["models"][model]
        for key in MODEL_KEYS:
            assert isinstance(figures[key], int | float) and math.isfinite(figures[key]), key
        assert figures["maps"] == 2 and figures["lost"] == 0, (model, doc["runs"][model])
        assert figures["envelopes"] == 10  # every edge sent both samples
        assert 0 < figures["ssim"] <= 1
        assert figures["l_edge_ms_p50"] > 0 and figures["l_comm_ms_p50"] > 0
        # The stages fit inside the whole.
        assert figures["l_central_ms_p50"] < figures["l_total_ms_p50"]
        assert figures["l_total_ms_p50"] <= figures["l_total_ms_p95"]
    epic, inv = doc["models"]["epic"], doc["models"]["inversionnet"]
    # Raw blocks (5 x 280 kB a sample) against 48 int8 numbers (~130 B an envelope), counted
    # at the proxies: connect, status and heartbeats included, over only 2 samples.
    assert inv["bytes_per_sample"] > 1_400_000
    assert inv["bytes_per_sample"] > 50 * epic["bytes_per_sample"]
    assert epic["payload_bytes_per_sample"] < 5 * 150
    # The observer's count of the data (envelopes in PUBLISH packets) and the proxies' count
    # agree: for raw blocks the session's own traffic is a fraction of a percent.
    assert inv["data_bytes_per_sample"] <= inv["bytes_per_sample"]
    assert inv["bytes_per_sample"] < 1.01 * inv["data_bytes_per_sample"]
    assert epic["bytes_x_fewer"] > 50 and epic["energy_x_lower"] > 50
    assert doc["robustness"] is None and doc["scaling"] is None
    assert "| EPIC |" in (tmp_path / "bench.md").read_text()
    assert "| InversionNet (centralized) |" in stdout
    # Every process stopped: no edge, proxy, centre or broker outlives the run.
    for log in (tmp_path / "run").glob("*/logs/central.log"):
        assert "epic central: stopping" in log.read_text()
    assert elapsed < 120, f"took {elapsed:.0f} s"
