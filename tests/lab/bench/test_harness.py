"""The benchmark's arithmetic, document and refusals, on synthetic records (no processes)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from epic.lab.bench.document import MODEL_KEYS, check_schema, markdown, plot
from epic.lab.bench.energy import ALPHA_UP_MW_PER_MBPS, BETA_MW, TAIL_POWER_MW
from epic.lab.bench.harness import _ratios
from epic.lab.bench.observer import EnvelopeRecord, MapRecord, map_record
from epic.lab.bench.runner import RunSpec, _kill_plan
from epic.lab.bench.scenarios import Deployed, parse_checkpoints, resolve_checkpoint
from epic.lab.bench.stats import (
    energy_per_device,
    model_figures,
    percentile,
    publish_bytes,
    robustness_curve,
    stage_latencies,
    throughput,
)
from epic.shared.errors import DataError, OptionError
from tests.lab.conftest import assert_one_line_error

MS = 1_000_000  # ns


def _env(
    sample: str,
    device: str,
    acquired_ms: float,
    encode_ms: float,
    arrival_ms: float,
    nbytes: int = 600,
) -> EnvelopeRecord:
    return EnvelopeRecord(
        sample,
        device,
        "latent",
        int(acquired_ms * MS),
        int(encode_ms * 1000),
        int(arrival_ms * MS),
        nbytes,
    )


def _map(
    sample: str,
    acquired_ms: float,
    last_ms: float,
    start_ms: float,
    end_ms: float,
    stored_ms: float,
    ssim: float | None = 0.7,
    used: int = 5,
    version: int = 1,
) -> MapRecord:
    return MapRecord(
        sample,
        version,
        used < 5,
        tuple(f"dev-{i}" for i in range(used)),
        int(acquired_ms * MS),
        int(last_ms * MS) - 5 * MS,
        int(last_ms * MS),
        int(start_ms * MS),
        int(end_ms * MS),
        int(stored_ms * MS),
        ssim,
    )


def test_percentile_matches_numpy_and_refuses_nonsense() -> None:
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 30, 101):
        xs = list(rng.exponential(50.0, n))
        for q in (0, 5, 50, 95, 100):
            assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 101)


def test_stage_latencies_follow_the_definitions() -> None:
    # Acquired at t = 1000 ms; encode 2 ms; arrival at 1060 ms: L_comm = 58 ms.
    envelopes = [
        _env("s1", "dev-0", 1000, 2.0, 1060),
        _env("s1", "dev-1", 1000, 4.0, 1100),
        _env("other", "dev-0", 0, 1.0, 5000),
    ]
    # Last arrival 1100, decode 1110-1130, stored 1145.
    maps = [_map("s1", 1000, 1100, 1110, 1130, 1145), _map("other", 0, 10, 11, 12, 13)]
    lat = stage_latencies(envelopes, maps, {"s1"})
    assert lat.edge_ms == [2.0, 4.0]
    assert lat.comm_ms == pytest.approx([58.0, 96.0])
    assert lat.central_ms == pytest.approx([30.0])  # assemble wait 10 + decode 20
    assert lat.decode_ms == pytest.approx([20.0])
    assert lat.total_ms == pytest.approx([145.0])
    # The critical path adds up: acquisition -> last arrival -> decode end -> stored.
    assert lat.to_last_arrival_ms[0] + lat.central_ms[0] + lat.store_ms[0] == pytest.approx(145)


def test_energy_per_sample_from_bytes_is_the_huang_model() -> None:
    # 280,000 B at 2 Mbit/s: 1.12 s of sending; one sample every 2 s leaves a 0.88 s gap.
    e = energy_per_device(280_000, 2e6, 2.0)
    assert e["transmit_s"] == pytest.approx(1.12)
    bits_mbit = 280_000 * 8 / 1e6
    assert e["transmit_mj"] == pytest.approx(ALPHA_UP_MW_PER_MBPS * bits_mbit + BETA_MW * 1.12)
    assert e["with_tail_mj"] == pytest.approx(e["transmit_mj"] + TAIL_POWER_MW * 0.88)
    # A latent: 700 B, same link: 2.8 ms of sending, the tail is most of the total.
    small = energy_per_device(700, 2e6, 2.0)
    assert small["transmit_mj"] == pytest.approx(ALPHA_UP_MW_PER_MBPS * 0.0056 + BETA_MW * 0.0028)
    assert e["transmit_mj"] / small["transmit_mj"] == pytest.approx(400.0)
    with pytest.raises(ValueError, match="rate"):
        energy_per_device(700, 0.0, 2.0)


def _figures(
    bytes_up: dict[str, int],
    samples: int = 4,
    ssim: float = 0.7,
    warmup: frozenset[str] = frozenset(),
) -> dict:
    ids = [f"s{k}" for k in range(samples)]
    envelopes = [
        _env(s, f"dev-{d}", 1000 * k, 2.0, 1000 * k + 50 + d, 600)
        for k, s in enumerate(ids)
        for d in range(5)
    ]
    maps = {
        s: _map(s, 1000 * k, 1000 * k + 60, 1000 * k + 61, 1000 * k + 81, 1000 * k + 90 + k, ssim)
        for k, s in enumerate(ids[:-1])
    }
    return model_figures(
        envelopes=envelopes,
        first_maps=maps,
        expected=ids,
        warmup=set(warmup),
        link_bytes_up=bytes_up,
        energy_rate_bps=2e6,
        rate_hz=0.5,
    )


def test_publish_bytes_is_mqtt_framing() -> None:
    # Measured at the link proxy (tests/lab/bench/test_link_mqtt.py): 20,480 B on a
    # 27-character topic at QoS 1 is 20,515 B up.
    assert publish_bytes(27, 20_480) == 20_515
    # The remaining-length varint grows at 128 and 16,384 bytes; QoS 0 has no packet id.
    assert publish_bytes(10, 100) == 1 + 1 + 114
    assert publish_bytes(10, 120) == 1 + 2 + 134
    assert publish_bytes(10, 100, qos=0) == 1 + 1 + 112
    assert publish_bytes(40, 280_000) == 1 + 3 + 280_044


def test_model_figures_count_bytes_lost_maps_and_skip_warmup() -> None:
    f = _figures({f"dev-{d}": 4 * 1000 for d in range(5)})
    assert f["maps"] == 3 and f["lost"] == 1
    assert f["bytes_per_sample"] == 5000.0  # 5 devices x 4000 B over 4 samples
    assert f["bytes_per_sample_per_device"] == 1000.0
    assert f["payload_bytes_per_sample"] == 3000.0  # 5 envelopes x 600 B
    assert f["data_bytes_per_sample"] == 5 * publish_bytes(0, 600)
    assert f["energy_mj_per_sample"] == pytest.approx(
        energy_per_device(1000, 2e6, 2.0)["transmit_mj"], abs=1e-3
    )
    assert f["l_total_ms_p50"] == pytest.approx(91.0)  # 90, 91, 92
    assert f["l_central_ms_p50"] == pytest.approx(21.0)
    assert f["l_edge_ms_p50"] == 2.0
    assert f["l_comm_ms_p50"] == pytest.approx(50.0)  # 48..52 over the devices
    assert f["ssim"] == pytest.approx(0.7)
    for key in MODEL_KEYS:
        assert isinstance(f[key], int | float) and math.isfinite(f[key]), key
    late = _figures({"dev-0": 4000}, warmup=frozenset({"s0", "s1"}))
    assert late["timed_samples"] == 2 and late["l_total_ms_p50"] == 92.0


def test_ratios_against_the_centralized_baseline() -> None:
    models = {
        "epic": {
            "l_total_ms_p50": 100.0,
            "energy_mj_per_sample": 2.0,
            "bytes_per_sample": 4e3,
            "energy_mj_per_sample_with_tail": 2000.0,
            "ssim": 0.73,
        },
        "inversionnet": {
            "l_total_ms_p50": 1500.0,
            "energy_mj_per_sample": 2400.0,
            "bytes_per_sample": 1.4e6,
            "energy_mj_per_sample_with_tail": 3000.0,
            "ssim": 0.76,
        },
    }
    _ratios(models)
    assert models["epic"]["l_total_x_lower"] == 15.0
    assert models["epic"]["energy_x_lower"] == 1200.0
    assert models["epic"]["energy_with_tail_x_lower"] == 1.5
    assert models["epic"]["bytes_x_fewer"] == 350.0
    assert models["epic"]["ssim_vs_centralized"] == pytest.approx(-0.03)
    assert models["inversionnet"]["l_total_x_lower"] == 1.0
    alone = {"epic": {"l_total_ms_p50": 1.0}}
    _ratios(alone)
    assert "l_total_x_lower" not in alone["epic"]


def test_robustness_curve_groups_maps_by_devices_cut() -> None:
    maps = [
        _map("a", 0, 50, 51, 70, 80, 0.75, used=5),
        _map("b", 0, 50, 51, 70, 90, 0.73, used=5),
        _map("c", 0, 2000, 2001, 2020, 2030, 0.70, used=4),
        _map("d", 0, 2000, 2001, 2020, 2030, 0.60, used=1),
    ]
    curve = robustness_curve(maps, 5)
    assert [r["devices_cut"] for r in curve] == [0, 1, 2, 3, 4]
    assert [r["maps"] for r in curve] == [2, 1, 0, 0, 1]
    assert curve[0]["ssim"] == pytest.approx(0.74) and curve[0]["l_total_ms_p50"] == 85.0
    assert curve[2]["ssim"] is None and curve[4]["ssim"] == 0.6


def test_throughput_is_maps_over_the_span_of_store_times() -> None:
    maps = [_map(f"s{k}", 0, 1, 2, 3, 1000 + 250 * k) for k in range(9)]  # 8 gaps of 250 ms
    assert throughput(maps) == {"maps": 9, "span_s": 2.0, "maps_per_s": 4.0}
    assert throughput(maps[:1])["maps_per_s"] is None


def _doc() -> dict:
    figures = {
        "l_edge_ms_p50": 1.2,
        "l_comm_ms_p50": 60.0,
        "l_central_ms_p50": 40.0,
        "l_total_ms_p50": 120.0,
        "l_total_ms_p95": 400.0,
        "bytes_per_sample": 4200.0,
        "energy_mj_per_sample": 3.1,
        "energy_mj_per_sample_with_tail": 2050.0,
        "ssim": 0.73,
        "maps": 30,
        "lost": 0,
        "l_total_x_lower": 12.0,
        "energy_x_lower": 700.0,
        "energy_with_tail_x_lower": 1.8,
        "bytes_x_fewer": 330.0,
        "ssim_vs_centralized": -0.02,
    }
    base = {**figures, "l_total_ms_p50": 1440.0, "ssim": 0.75, "bytes_per_sample": 1.4e6}
    return {
        "link": "4g",
        "edges": 5,
        "samples": 30,
        "rate_hz": 0.5,
        "family": "flatfault-a",
        "date": "2026-11-23T00:00:00+00:00",
        "command": "epic bench",
        "machine": {"cpus": 2, "cpu_model": "AMD EPYC", "load_1_5_15": [0.1, 0.1, 0.1]},
        "energy_model": "LTE",
        "models": {"epic": figures, "inversionnet": base},
        "robustness": {
            "link": "4g",
            "kill_every_samples": 6,
            "killed": ["dev-0"],
            "curve": [
                {"devices_cut": k, "maps": 6, "ssim": 0.73 - 0.01 * k, "l_total_ms_p50": 100.0}
                for k in range(5)
            ],
        },
        "scaling": {
            "rate_hz": 100.0,
            "samples": 100,
            "rows": [
                {
                    "edges": n,
                    "edge_processes": min(n, 5),
                    "weights": "untrained",
                    "maps_per_s": 40.0 / n,
                    "maps": 100,
                    "partial": 0,
                    "lost": 0,
                }
                for n in (2, 5, 10)
            ],
        },
    }


def test_json_schema_accepts_the_contract_and_names_what_breaks_it() -> None:
    doc = json.loads(json.dumps(_doc()))  # what --json writes, read back
    assert check_schema(doc) == []
    broken = json.loads(json.dumps(doc))
    del broken["models"]["epic"]["ssim"]
    broken["models"]["inversionnet"]["maps"] = None
    broken["models"]["inversionnet"]["lost"] = True
    broken["edges"] = "5"
    assert sorted(check_schema(broken)) == [
        "'edges' is not a number",
        "models.epic.ssim is not a number",
        "models.inversionnet.lost is not a number",
        "models.inversionnet.maps is not a number",
    ]
    assert check_schema({"link": "4g"})[0] == "no 'edges'"


def test_markdown_and_plot(tmp_path: Path) -> None:
    text = markdown(_doc())
    assert "| EPIC | 1.20 | 60.0 | 40.0 | 120.0 / 400.0 | 12.0x lower | 4.20 kB |" in text
    assert "| InversionNet (centralized) |" in text and "1.40 MB" in text
    assert "| 4 | 6 | 0.6900 |" in text  # robustness row
    assert "| 10 | 5 | untrained | 4.00 |" in text  # scaling row
    out = tmp_path / "bench.png"
    plot(_doc(), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_map_record_reads_the_centres_summary() -> None:
    summary = {
        "sample_id": "flatfault-a-7",
        "version": 1,
        "partial": True,
        "devices_used": ["dev-0", "dev-2"],
        "devices_missing": ["dev-1"],
        "ssim": 0.5,
        "timings": {
            "acquired_ns": 1,
            "first_arrival_ns": 2,
            "last_arrival_ns": 3,
            "decode_start_ns": 4,
            "decode_end_ns": 5,
            "stored_ns": 6,
            "decode_ms": 0.0,
        },
    }
    m = map_record(summary)
    assert (m.sample_id, m.partial, m.devices_used, m.stored_ns) == (
        "flatfault-a-7",
        True,
        ("dev-0", "dev-2"),
        6,
    )


def test_kill_plan_cuts_one_more_edge_every_k_samples(tmp_path: Path) -> None:
    deployed = Deployed("epic", tmp_path, tmp_path, "d", "latent", 5, True)
    spec = RunSpec(
        "r",
        deployed,
        samples=30,
        rate=0.5,
        link="4g",
        family="flatfault-a",
        pool_size=4,
        workdir=tmp_path,
        kill_every=6,
    )
    plan = _kill_plan(spec, start_slot=1000)
    assert [d for _, d in plan] == ["dev-0", "dev-1", "dev-2", "dev-3"]  # one always survives
    # Sample 1006 is due at 2012 s; its edge dies 0.3 of a slot (0.6 s) before.
    assert [t for t, _ in plan] == pytest.approx([2011.4, 2023.4, 2035.4, 2047.4])
    short = RunSpec(
        "r",
        deployed,
        samples=10,
        rate=0.5,
        link="4g",
        family="flatfault-a",
        pool_size=4,
        workdir=tmp_path,
        kill_every=6,
    )
    assert len(_kill_plan(short, 1000)) == 1
    assert _kill_plan(RunSpec("r", deployed, 30, 0.5, "4g", "flatfault-a", 4, tmp_path), 0) == []


def test_checkpoints_default_to_the_shipped_ones(tmp_path: Path, monkeypatch) -> None:
    from epic.lab.bench import scenarios

    for model in ("epic", "inversionnet", "fla", "sla"):
        assert resolve_checkpoint(model, {}).is_file()
    monkeypatch.setitem(scenarios.DEFAULT_CHECKPOINTS, "fla", None)
    with pytest.raises(DataError, match=r"no trained fla checkpoint .* --checkpoint fla=PATH"):
        resolve_checkpoint("fla", {})
    with pytest.raises(DataError, match="no such checkpoint"):
        resolve_checkpoint("sla", {"sla": tmp_path / "missing.pt"})
    assert parse_checkpoints(["fla=a/b.pt"]) == {"fla": Path("a/b.pt")}
    for bad in ("fla", "=x.pt", "nope=x.pt"):
        with pytest.raises(OptionError):
            parse_checkpoints([bad])


def test_cli_refuses_a_missing_checkpoint_in_one_line(cli, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    result = cli(
        "bench",
        "--models",
        "epic,fla",
        "--checkpoint",
        f"fla={missing}",
        "--workdir",
        str(tmp_path / "w"),
    )
    assert_one_line_error(result, "missing.pt", "no such checkpoint")
    assert not (tmp_path / "w").exists()  # refused before anything ran
    assert_one_line_error(cli("bench", "--scaling", "2,x"), "--scaling")
    assert_one_line_error(cli("bench", "--checkpoint", "epic"), "MODEL=PATH")
