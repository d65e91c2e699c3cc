"""``epic bench``: EPIC against the centralized and split baselines, through a real broker.

For each model: deploy its checkpoint, run the whole pipeline (``epic.lab.bench.runner``: broker,
centre, one link proxy and one edge process per device, an MQTT observer), and reduce what
was seen to the paper's Table 1 row (``epic.lab.bench.stats``). Then, optionally, the robustness
run (EPIC with one more edge SIGKILLed every S/N samples, ``--min-devices 1``: SSIM per
number of devices cut) and the throughput runs (maps per second against the number of
edges, link ``none``, a high rate; untrained EPIC-Net for every N but 5). ``run_bench``
returns the JSON document that ``--json`` writes.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from epic.lab.bench.runner import CENTRE_DEADLINE_MS, RunResult, RunSpec, run_pipeline
from epic.lab.bench.scenarios import deploy, resolve_checkpoint, untrained_epic
from epic.lab.bench.stats import (
    ENERGY_FALLBACK_PROFILE,
    model_figures,
    robustness_curve,
    throughput,
)
from epic.shared.errors import OptionError
from epic.shared.pool import DEFAULT_SIZE

__all__ = ["BenchConfig", "run_bench"]

CENTRALIZED = "inversionnet"
LINKS = ("4g", "wifi", "none")
SCALING_DEADLINE_MS = 30_000.0  # throughput runs: every map complete, none decoded twice


@dataclass
class BenchConfig:
    link: str = "4g"
    models: list[str] = field(default_factory=lambda: ["epic", "inversionnet"])
    edges: int = 5
    samples: int = 30
    rate: float = 0.5
    family: str = "flatfault-a"
    checkpoints: dict[str, Path] = field(default_factory=dict)
    workdir: Path = Path("runs/bench")
    pool_size: int = DEFAULT_SIZE  # the edges' own
    robustness: bool = True
    scaling: list[int] = field(default_factory=list)
    scaling_rate: float = 100.0  # above what the machine sustains: the edges never wait
    scaling_samples: int = 100
    scaling_processes: int = 5  # edge processes at most in a throughput run
    deadline_ms: float | None = None  # None: the centre's own (CENTRE_DEADLINE_MS)
    lead_s: float | None = None  # seconds from launch to the first slot; None: estimated
    progress: bool = True
    command: str = ""

    def check(self) -> None:
        if self.link not in LINKS:
            raise OptionError(self.link, f"link must be one of {', '.join(LINKS)}")
        if not self.models or len(set(self.models)) != len(self.models):
            raise OptionError(",".join(self.models), "--models: name each model once")
        for name, value, low in (
            ("--edges", self.edges, 1),
            ("--samples", self.samples, 1),
            ("--pool-size", self.pool_size, 1),
        ):
            if value < low:
                raise OptionError(name, f"{value} must be >= {low}")
        if not 0 < self.rate <= 100:
            raise OptionError("--rate", f"{self.rate} Hz must be in (0, 100]")
        if any(n < 1 or n > 70 for n in self.scaling):
            raise OptionError("--scaling", "edge counts must be 1-70 (one receiver each at 70)")


def _lead_s(cfg: BenchConfig, processes: int) -> float:
    # Measured on 2 cores: an edge process (Python, torch/onnxruntime, pool, broker) is up
    # ~2 s after launch alone, ~1.5 s more for each one starting beside it.
    return cfg.lead_s if cfg.lead_s is not None else 6.0 + 1.5 * processes


def _drain_s(cfg: BenchConfig, mode: str, edges: int) -> float:
    """Seconds after the last slot before the run gives up: uploads that queue (raw blocks
    slower than the rate), then the centre's deadline and decode."""
    from epic.lab.bench.link_profile import LinkProfile

    deadline_s = (cfg.deadline_ms or CENTRE_DEADLINE_MS) / 1e3
    rate_bps = LinkProfile.named(cfg.link).effective_rate_bps
    if mode != "raw" or rate_bps is None:
        return 30.0 + 2 * deadline_s
    upload_s = 5 * 1000 * math.ceil(70 / edges) * 4 * 8 / rate_bps
    backlog_s = max(0.0, cfg.samples * (upload_s - 1 / cfg.rate))
    return 30.0 + 2 * deadline_s + 1.5 * backlog_s + 2 * upload_s


def _energy_rate_bps(link: str) -> tuple[float, str]:
    from epic.lab.bench.link_profile import LinkProfile

    rate = LinkProfile.named(link).effective_rate_bps if link == "4g" else None
    if rate is None:  # not an LTE link: send at 4g's rate, and say so
        rate = LinkProfile.named(ENERGY_FALLBACK_PROFILE).effective_rate_bps
        assert rate is not None
        return rate, f"LTE model at the {ENERGY_FALLBACK_PROFILE} profile's {rate / 1e6:.2f} Mbit/s"
    return rate, f"LTE model at the {link} profile's {rate / 1e6:.2f} Mbit/s"


def run_bench(cfg: BenchConfig, echo: Callable[[str], None] = print) -> dict:
    """Every run the config asks for; returns the JSON document."""
    from epic.shared.pool import ShotPool

    cfg.check()
    checkpoints = {m: resolve_checkpoint(m, cfg.checkpoints) for m in cfg.models}
    checkpoints_epic: Path | None
    if cfg.robustness and "epic" not in checkpoints:
        checkpoints_epic = resolve_checkpoint("epic", cfg.checkpoints)
    else:
        checkpoints_epic = checkpoints.get("epic")
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    echo(f"shot pool: sim:{cfg.family}, {cfg.pool_size} samples (simulated once, then cached)")
    ShotPool.open(cfg.family, size=cfg.pool_size, progress=cfg.progress)
    energy_bps, energy_note = _energy_rate_bps(cfg.link)
    doc: dict = {
        "link": cfg.link,
        "edges": cfg.edges,
        "samples": cfg.samples,
        "models": {},
        "rate_hz": cfg.rate,
        "family": cfg.family,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "command": cfg.command,
        "energy_model": energy_note,
        "runs": {},
    }
    for model, checkpoint in checkpoints.items():
        deployed = deploy(
            model, checkpoint, cfg.workdir / "bundles" / model, f"bench-{model}", cfg.edges
        )
        spec = RunSpec(
            label=model,
            deployed=deployed,
            samples=cfg.samples,
            rate=cfg.rate,
            link=cfg.link,
            family=cfg.family,
            pool_size=cfg.pool_size,
            workdir=cfg.workdir,
            deadline_ms=cfg.deadline_ms,
            lead_s=_lead_s(cfg, cfg.edges),
            align=cfg.pool_size,
            drain_s=_drain_s(cfg, deployed.mode, cfg.edges),
            progress=cfg.progress,
        )
        echo(
            f"{model}: {cfg.edges} edges ({deployed.mode} mode) over {cfg.link}, "
            f"{cfg.samples} samples at {cfg.rate} Hz"
        )
        result = run_pipeline(spec)
        doc["models"][model] = _figures(result, energy_bps, cfg.rate)
        doc["runs"][model] = _run_notes(result)
        echo(f"{model}: {result.finished} ({result.elapsed_s:.0f} s)")
    _ratios(doc["models"])
    doc["robustness"] = None
    if cfg.robustness:
        assert checkpoints_epic is not None
        doc["robustness"] = _robustness(cfg, checkpoints_epic, echo)
    doc["scaling"] = _scaling(cfg, echo) if cfg.scaling else None
    return doc


def _figures(result: RunResult, energy_bps: float, rate: float) -> dict:
    return model_figures(
        envelopes=result.envelopes,
        first_maps=result.first_maps(),
        expected=result.expected,
        warmup=result.warmup,
        link_bytes_up={d: s["bytes_up"] for d, s in result.link_stats.items()},
        energy_rate_bps=energy_bps,
        rate_hz=rate,
    )


def _run_notes(result: RunResult) -> dict:
    health = result.health
    return {
        "finished": result.finished,
        "start_slot": result.start_slot,
        "first_sample": result.expected[0],
        "warmup_samples_left_out": len(result.warmup),
        "edges_up_s": round((result.ready_ns - result.launched_ns) / 1e9, 1)
        if result.ready_ns
        else None,
        "elapsed_s": round(result.elapsed_s, 1),
        "load_at_start": [round(x, 2) for x in result.load_at_start],
        "observer_malformed": result.malformed,
        "centre_dropped": health.get("samples_dropped"),
        "centre_rejected": health.get("rejected"),
        "lost_segments": sum(s.get("lost_segments", 0) for s in result.link_stats.values()),
    }


def _ratios(models: dict[str, dict]) -> None:
    """Each model against centralized InversionNet (when it ran): how many times lower."""
    base = models.get(CENTRALIZED)
    if base is None:
        return
    for figures in models.values():
        for key, base_key in (
            ("l_total_x_lower", "l_total_ms_p50"),
            ("energy_x_lower", "energy_mj_per_sample"),
            ("energy_with_tail_x_lower", "energy_mj_per_sample_with_tail"),
            ("bytes_x_fewer", "bytes_per_sample"),
        ):
            ours, theirs = figures.get(base_key), base.get(base_key)
            figures[key] = round(theirs / ours, 2) if ours and theirs else None
        if figures.get("ssim") is not None and base.get("ssim") is not None:
            figures["ssim_vs_centralized"] = round(figures["ssim"] - base["ssim"], 4)


def _robustness(cfg: BenchConfig, checkpoint: Path, echo: Callable[[str], None]) -> dict:
    deployed = deploy("epic", checkpoint, cfg.workdir / "bundles" / "epic", "bench-epic", cfg.edges)
    from epic.shared.pool import ShotPool

    every = max(1, cfg.samples // cfg.edges)
    # A pool of exactly `every` samples, replayed from its first: each stretch between two
    # kills scores the same samples, so the curve shows the devices cut, not the content.
    ShotPool.open(cfg.family, size=every, progress=cfg.progress)
    spec = RunSpec(
        label="robustness",
        deployed=deployed,
        samples=cfg.samples,
        rate=cfg.rate,
        link=cfg.link,
        family=cfg.family,
        pool_size=every,
        workdir=cfg.workdir,
        align=every,
        kill_every=every,
        min_devices=1,
        deadline_ms=cfg.deadline_ms,
        lead_s=_lead_s(cfg, cfg.edges),
        drain_s=_drain_s(cfg, "latent", cfg.edges),
        progress=cfg.progress,
    )
    echo(f"robustness: epic, one more of {cfg.edges} edges SIGKILLed every {every} samples")
    result = run_pipeline(spec)
    echo(f"robustness: {result.finished} ({result.elapsed_s:.0f} s)")
    return {
        "model": "epic",
        "link": cfg.link,
        "kill_every_samples": every,
        "pool_size": every,
        "killed": sorted(result.killed_ns),
        "min_devices": 1,
        "curve": robustness_curve(result.first_maps().values(), cfg.edges),
        "maps": len(result.first_maps()),
        "samples": cfg.samples,
    }


def _scaling(cfg: BenchConfig, echo: Callable[[str], None]) -> dict:
    rows = []
    shipped = resolve_checkpoint("epic", cfg.checkpoints)
    for n in cfg.scaling:
        folder = cfg.workdir / "scaling"
        trained = n == 5
        checkpoint = shipped if trained else untrained_epic(n, folder)
        deployed = deploy(
            "epic",
            checkpoint,
            folder / f"bundle-{n}",
            f"bench-scale-{n}",
            n,
            trained=trained,
            onnx=False,
        )
        processes = min(n, cfg.scaling_processes)
        spec = RunSpec(
            label=f"scaling-{n}",
            deployed=deployed,
            samples=cfg.scaling_samples,
            rate=cfg.scaling_rate,
            link="none",
            family=cfg.family,
            pool_size=cfg.pool_size,
            workdir=cfg.workdir,
            proxies=False,
            edges_per_process=math.ceil(n / processes),
            deadline_ms=SCALING_DEADLINE_MS,
            max_open_samples=4096,
            observe_envelopes=False,
            lead_s=_lead_s(cfg, processes) + 0.15 * n,
            drain_s=120.0,
            progress=cfg.progress,
        )
        label = "trained" if trained else "untrained: throughput only, no SSIM"
        echo(
            f"scaling: {n} edges in {processes} processes ({label}), link none, "
            f"{cfg.scaling_samples} samples at {cfg.scaling_rate} Hz"
        )
        result = run_pipeline(spec)
        first = result.first_maps()
        sustained = throughput(first.values())
        rate = sustained["maps_per_s"]
        row = {
            "edges": n,
            "edge_processes": processes,
            "weights": "trained" if trained else "untrained (throughput only, no SSIM)",
            **sustained,
            "partial": sum(1 for m in first.values() if m.partial),
            "lost": cfg.scaling_samples - len(first),
            "offered_hz": cfg.scaling_rate,
            # Below the offered rate: the machine, not the edges' pace, set the figure.
            "saturated": bool(rate and rate < 0.9 * cfg.scaling_rate),
            "decode_batched_ms_p50": result.health.get("decode_batched_ms_p50"),
            "decode_ms_p50_per_sample": result.health.get("decode_ms_p50"),
            "finished": result.finished,
        }
        rows.append(row)
        echo(
            f"scaling: {n} edges -> {row['maps_per_s']} maps/s ({row['maps']} maps, "
            f"{row['lost']} lost)"
        )
    return {
        "link": "none",
        "rate_hz": cfg.scaling_rate,
        "samples": cfg.scaling_samples,
        "rows": rows,
    }


def _machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }
