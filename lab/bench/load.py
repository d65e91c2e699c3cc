"""Load run: 70 real edges at 2 samples/s each into one centre, and what came out.

Every part is a real process: the broker (``epic broker``, or Mosquitto), the centre (``epic
central``) and the edges (``epic.lab.bench.load_edges``: whole ``EdgeDaemon`` s, several to a
process, each with its own MQTT connection, encoder and outbox). The model is an EPIC-Net lite built
for ``--devices`` devices (architecture-identical to the shipped one, *untrained*: its maps mean
nothing, its costs are the real ones), deployed with ``write_bundle``.

All devices start at one agreed time slot and produce ``duration * rate`` shots each. The run
then checks what the issue asks: every latent reached the centre (no sample lost, none
partial), the end-to-end p95 (map stored minus shot acquired) is under the deadline, and the
centre's resident memory stays flat (``VmRSS`` of its process, sampled every few seconds).

    python -m epic.lab.bench.load                       # 70 edges, 2/s, 5 minutes, embedded broker
    python -m epic.lab.bench.load --duration 30 --json runs/load.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from epic.central.settings import CentralSettings

__all__ = ["LoadConfig", "LoadReport", "make_bundle", "run_load"]

DEPLOYMENT = "load"


@dataclass(frozen=True)
class LoadConfig:
    workdir: Path
    devices: int = 70
    rate: float = 2.0
    duration_s: float = 300.0
    edge_procs: int = 2
    deadline_ms: float = CentralSettings.model_fields["deadline_ms"].default  # the centre's
    broker: str = "embedded"  # embedded, mosquitto, or mqtt://HOST:PORT of a running one
    family: str = "flatfault-a"
    pool_size: int = 4
    central_threads: int = 1
    rss_every_s: float = 5.0

    @property
    def samples(self) -> int:
        return max(1, round(self.duration_s * self.rate))


@dataclass
class LoadReport:
    devices: int
    samples: int
    latents_expected: int
    latents_received: int  # distinct (sample, device) pairs in the stored maps
    latents_lost: int
    maps: int
    partial: int
    refined: int
    rejected: dict[str, int]
    dropped: dict[str, int]
    late: int
    duplicates: int
    e2e_ms_p50: float | None
    e2e_ms_p95: float | None
    e2e_ms_max: float | None
    deadline_ms: float
    decode_ms_p95: float | None
    rss_mb_start: float  # after the first maps (imports, model and warm-up done)
    rss_mb_end: float  # the last sample while the stream ran
    rss_mb_max: float
    rss_mb_final: float  # after the run's own listing of every map (500 at a time)
    rss_series: list[tuple[float, float]] = field(default_factory=list)  # (s, MB)
    edges: dict[str, dict] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.latents_lost == 0
            and self.partial == 0
            and self.e2e_ms_p95 is not None
            and self.e2e_ms_p95 < self.deadline_ms
        )

    def summary(self) -> str:
        return (
            f"{self.devices} edges x {self.samples} samples: {self.latents_received}/"
            f"{self.latents_expected} latents in maps ({self.latents_lost} lost), {self.maps} maps "
            f"({self.partial} partial, {self.refined} refined), rejected {self.rejected or 0}, "
            f"dropped {self.dropped or 0}; end-to-end p50 {self.e2e_ms_p50:.0f} ms, p95 "
            f"{self.e2e_ms_p95:.0f} ms, max {self.e2e_ms_max:.0f} ms (deadline "
            f"{self.deadline_ms:.0f} ms); centre RSS {self.rss_mb_start:.0f} MB -> "
            f"{self.rss_mb_end:.0f} MB (max {self.rss_mb_max:.0f}; {self.rss_mb_final:.0f} after "
            f"listing every map); {self.wall_s:.0f} s"
        )


def make_bundle(workdir: Path, devices: int) -> Path:
    """An untrained EPIC-Net lite for ``devices`` devices, deployed (made once per folder)."""
    import torch

    from epic.shared.bundle import write_bundle
    from epic.shared.models.checkpoint import save_checkpoint
    from epic.shared.models.registry import build_model

    out = workdir / f"bundle-{devices}"
    if (out / "manifest.json").is_file():
        return out
    torch.manual_seed(0)
    checkpoint = workdir / f"epic-lite-{devices}-untrained.pt"
    model = build_model("epic", "lite", devices)
    save_checkpoint(checkpoint, model, purpose="load test only: untrained weights", seed=0)
    write_bundle(checkpoint, out, DEPLOYMENT)
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def run_load(config: LoadConfig, progress: bool = False) -> LoadReport:
    """Run it; every process is stopped before this returns, whatever happens."""
    from epic.shared.launcher import Child, Supervisor, free_port, get_json
    from epic.shared.pool import ShotPool

    started = time.monotonic()
    work = config.workdir
    work.mkdir(parents=True, exist_ok=True)
    for stale in [
        *work.glob("ready-*"),
        *work.glob("outbox-*"),
        work / "go.json",
        work / "central.sqlite",
    ]:
        stale.unlink(missing_ok=True)
    bundle = make_bundle(work, config.devices)
    cache = work / "pool"
    ShotPool.open(config.family, size=config.pool_size, cache_dir=cache)
    say = print if progress else (lambda *a, **k: None)
    supervisor = Supervisor(work / "logs")
    try:
        url = _start_broker(config, supervisor)
        api_port = free_port()
        central = supervisor.start(
            "central",
            "central",
            "--bundle",
            str(bundle),
            "--broker",
            url,
            "--port",
            str(api_port),
            "--db",
            str(work / "central.sqlite"),
            "--deadline-ms",
            str(config.deadline_ms),
            "--threads",
            str(config.central_threads),
            env={"OMP_NUM_THREADS": str(config.central_threads)},
        )
        api = f"http://127.0.0.1:{api_port}"
        supervisor.wait_until(
            central, lambda: get_json(f"{api}/api/health") is not None, "API", timeout_s=120
        )
        ids = [f"dev-{i}" for i in range(config.devices)]
        groups = [ids[k :: config.edge_procs] for k in range(config.edge_procs)]
        edges = []
        for k, group in enumerate(groups):
            argv = [
                sys.executable,
                "-m",
                "epic.lab.bench.load_edges",
                "--bundle",
                str(bundle),
                "--broker",
                url,
                "--devices",
                ",".join(group),
                "--rate",
                str(config.rate),
                "--max-samples",
                str(config.samples),
                "--family",
                config.family,
                "--pool-size",
                str(config.pool_size),
                "--cache-dir",
                str(cache),
                "--workdir",
                str(work),
                "--group",
                str(k),
            ]
            child = Child(
                f"edges-{k}", argv, supervisor.logs / f"edges-{k}.log", {"OMP_NUM_THREADS": "1"}
            )
            child.start()
            supervisor.children.append(child)
            edges.append(child)
        for k, child in enumerate(edges):
            supervisor.wait_until(
                child, (work / f"ready-{k}").is_file, "its devices ready", timeout_s=300
            )
        from epic.edge.sources.base import current_slot

        start_slot = current_slot(time.time_ns(), config.rate) + max(2, round(config.rate))
        (work / "go.tmp").write_text(json.dumps({"start_slot": start_slot}))
        (work / "go.tmp").replace(work / "go.json")
        say(
            f"{config.devices} edges ready in {len(edges)} processes; starting at slot "
            f"{start_slot}, {config.samples} samples each"
        )
        series = _watch(config, central, edges, api, say)
        for child in edges:  # done (every map complete) or out of time: stop, with stats
            child.stop(grace_s=30)
        report = _collect(config, api, series, edges)
        report.rss_mb_final = round(_rss_mb(central.pid), 1)
    finally:
        supervisor.stop_all()
    report.wall_s = time.monotonic() - started
    return report


def _start_broker(config: LoadConfig, supervisor: Any) -> str:
    from epic.shared.launcher import Child, free_port

    if config.broker.startswith("mqtt://"):
        return config.broker
    port = free_port()
    if config.broker == "embedded":
        child = supervisor.start("broker", "broker", "--port", str(port))
    elif config.broker == "mosquitto":
        # Mosquitto 2 with no config file: localhost only, anonymous allowed.
        child = Child(
            "broker", ["/usr/sbin/mosquitto", "-p", str(port)], supervisor.logs / "broker.log"
        )
        child.start()
        supervisor.children.append(child)
    else:
        raise ValueError(f"broker {config.broker!r}: embedded, mosquitto or mqtt://HOST:PORT")
    supervisor.wait_port(child, port)
    return f"mqtt://127.0.0.1:{port}"


def _watch(config: LoadConfig, central: Any, edges: list, api: str, say: Any) -> list:
    """Sample the centre's RSS until the edges finish and every sample is in (bounded)."""
    from epic.shared.launcher import get_json

    pid = central.process.pid
    series: list[tuple[float, float]] = []
    t0 = time.monotonic()
    limit = t0 + config.duration_s + 120 + config.samples * config.devices / 100
    next_sample = t0
    while time.monotonic() < limit:
        if not central.alive:
            raise RuntimeError(f"the centre died; log {central.log}:\n{central.tail()}")
        if time.monotonic() >= next_sample:
            series.append((round(time.monotonic() - t0, 1), round(_rss_mb(pid), 1)))
            next_sample += config.rss_every_s
            health = get_json(f"{api}/api/health") or {}
            say(
                f"  t={series[-1][0]:5.0f} s  centre RSS {series[-1][1]:6.1f} MB  maps "
                f"{health.get('maps_stored')}  buffer {health.get('buffer_depth')}"
            )
        health = get_json(f"{api}/api/health") or {}
        stored = health.get("maps_stored") or 0
        if stored >= config.samples and _all_complete(api, config.samples):
            break  # every latent of every sample is in a map
        if all(not e.alive for e in edges) and health.get("buffer_depth") == 0:
            break  # the edges gave up or finished: whatever is missing is lost
        time.sleep(0.5)
    return series


def _all_complete(api: str, samples: int) -> bool:
    from epic.shared.launcher import get_json

    maps = (get_json(f"{api}/api/maps?limit={min(samples, 500)}", timeout=30) or {}).get("maps")
    if not maps:
        return False
    return not any(m["devices_missing"] for m in maps)


def _collect(config: LoadConfig, api: str, series: list, edges: list) -> LoadReport:
    from epic.shared.launcher import get_json

    maps: list[dict] = []
    before = None
    while True:
        query = f"{api}/api/maps?limit=500" + (f"&before={before}" if before else "")
        page = (get_json(query, timeout=30) or {}).get("maps", [])
        maps += page
        if len(page) < 500:
            break
        before = page[-1]["sample_id"]
    devices = (get_json(f"{api}/api/devices", timeout=30) or {}).get("devices", [])
    health = get_json(f"{api}/api/health", timeout=30) or {}
    e2e = [
        m["timings"]["end_to_end_ms"]
        for m in maps
        if m["version"] == 1 and m["timings"]["end_to_end_ms"] is not None
    ]
    received = sum(len(m["devices_used"]) for m in maps)
    expected = config.samples * config.devices
    edge_stats: dict[str, dict] = {}
    for child in edges:
        for line in child.log.read_text(errors="replace").splitlines():
            if line.startswith("stats "):
                edge_stats.update(json.loads(line[6:]))
    # Warm-up excluded from the start figure: the first sample after maps began.
    warm = [mb for t, mb in series if t >= min(20.0, config.duration_s / 4)] or [series[0][1]]
    return LoadReport(
        devices=config.devices,
        samples=config.samples,
        latents_expected=expected,
        latents_received=received,
        latents_lost=expected - received,
        maps=len(maps),
        partial=sum(m["partial"] for m in maps),
        refined=sum(m["version"] > 1 for m in maps),
        rejected=health.get("rejected") or {},
        dropped=health.get("samples_dropped") or {},
        late=sum(d["late_latents"] for d in devices),
        duplicates=sum(d["duplicates"] for d in devices),
        e2e_ms_p50=_percentile(e2e, 50),
        e2e_ms_p95=_percentile(e2e, 95),
        e2e_ms_max=max(e2e) if e2e else None,
        deadline_ms=config.deadline_ms,
        decode_ms_p95=health.get("decode_ms_p95"),
        rss_mb_start=warm[0],
        rss_mb_end=series[-1][1],
        rss_mb_max=max(mb for _, mb in series),
        rss_mb_final=0.0,
        rss_series=series,
        edges=edge_stats,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m epic.lab.bench.load", description=__doc__.split("\n")[0]
    )
    p.add_argument("--devices", type=int, default=70)
    p.add_argument("--rate", type=float, default=2.0, help="samples per second per edge")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of shots")
    p.add_argument("--edge-procs", type=int, default=2, help="processes the edges share")
    p.add_argument("--deadline-ms", type=float, default=LoadConfig.deadline_ms)
    p.add_argument("--broker", default="embedded", help="embedded, mosquitto or mqtt://...")
    p.add_argument("--workdir", type=Path, default=Path("runs/load"))
    p.add_argument("--json", type=Path, help="write the report here")
    args = p.parse_args(argv)
    config = LoadConfig(
        workdir=args.workdir,
        devices=args.devices,
        rate=args.rate,
        duration_s=args.duration,
        edge_procs=args.edge_procs,
        deadline_ms=args.deadline_ms,
        broker=args.broker,
    )
    report = run_load(config, progress=True)
    print(report.summary())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
