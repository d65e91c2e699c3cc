"""The load run, short, in CI: 70 real edges (whole ``EdgeDaemon`` s, each with its own MQTT
connection, in 2 processes) at 2 samples/s into one ``epic central`` through ``epic broker``, for 12
s of shots (``python -m epic.lab.bench.load`` runs the full 5 minutes; docs/reliability.md has its
figures). Every latent must reach a map, no map may be partial, the end-to-end p95 must be under the
2 s deadline, and the centre's memory must not grow by more than a little."""

from __future__ import annotations

from pathlib import Path

import pytest

from epic.lab.bench.load import LoadConfig, run_load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_seventy_edges_at_two_samples_a_second_lose_nothing(tmp_path: Path) -> None:
    report = run_load(LoadConfig(workdir=tmp_path, devices=70, rate=2.0, duration_s=12.0))
    summary = report.summary()
    assert report.samples == 24 and report.latents_expected == 70 * 24, summary
    assert report.latents_lost == 0 and report.maps == 24 and report.partial == 0, summary
    assert report.rejected == {} and report.dropped == {} and report.duplicates == 0, summary
    assert report.e2e_ms_p95 is not None and report.e2e_ms_p95 < report.deadline_ms, summary
    assert report.rss_mb_end - report.rss_mb_start < 50, summary  # no leak of a map a second
    assert len(report.edges) == 70, summary
    assert all(
        e["outbox_dropped"] == 0 and e["skipped"] == 0 and e["sent"] == 24
        for e in report.edges.values()
    ), summary
