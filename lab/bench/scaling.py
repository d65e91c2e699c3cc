"""What each process of a multi-deployment installation costs, in CPU time per unit of work:
the numbers ``docs/scaling.md`` sizes machines with.

    python -m epic.lab.bench.scaling --db postgresql://USER@HOST/DB [--deployments 3]
        [--samples 200] [--rate 5] [--requests 400] [--broker mosquitto|amqtt] [--json FILE]

A broker, one ``epic central`` per deployment (5 devices, the shipped model, one torch
thread each) and one ``epic api``, all on ``--db`` (PostgreSQL), as subprocesses. Then:

1. **Stream**: ``--samples`` samples per deployment, at ``--rate`` samples a second each, 5
   int8 envelopes a sample, published QoS 1 as the edges would; until every map is stored.
2. **Serve**: ``--requests`` HTTP requests to ``epic api`` (the monitor's mix: a deployment's
   latest map, its map list, its devices, its health, the deployment list, a map picture),
   one at a time, nothing streaming.

Each process's CPU time (user + system, from ``/proc``) is read before and after each phase,
so a figure is the work done, whatever else shared the cores: centre ms per map, broker ms
per message, PostgreSQL ms per map (every server process of the database's owner), API ms
per map followed (its LISTEN and reads) and per request.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from epic.lab.bench.decode import CHECKPOINT, ROOT, _start_broker, stop_processes
from epic.lab.bench.stats import write_json

DEVICES = 5
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (the benchmark's database's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def postgres_cpu_s() -> float:
    total = 0.0
    for pid in postgres_pids():
        try:
            total += cpu_s(pid)
        except OSError:  # a backend that ended: its time is lost to the count (conservative)
            continue
    return total


def _start(cmd: list[str], pattern: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        if m := re.search(pattern, line):
            return proc, m[1]
    raise SystemExit(f"{' '.join(cmd[2:4])} did not start (exit {proc.poll()})")


def start_centre(bundle: Path, broker: str, db: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "epic", "central", "--bundle", str(bundle), "--broker", broker]
    cmd += ["--port", "0", "--db", db, "--threads", "1"]
    return _start(cmd, r"monitor at (http://\S+)")


def start_api(db: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "epic", "api", "--db", db, "--port", "0"]
    return _start(cmd, r"monitor at (http://\S+)")


async def stream(broker: str, bundles: list[Path], samples: int, rate: float) -> int:
    """Publish every deployment's samples at ``rate`` each; the messages sent."""
    import aiomqtt
    from tqdm import tqdm

    from epic.shared.bundle import load_manifest
    from epic.shared.wire import Envelope, latent_topic, pack

    host, port = broker.removeprefix("mqtt://").rsplit(":", 1)
    rng = np.random.default_rng(1)
    manifests = [load_manifest(b) for b in bundles]
    sent = 0
    async with aiomqtt.Client(host, int(port), identifier="bench-edges") as edges:
        t0 = time.monotonic()
        for k in tqdm(range(samples), desc="stream", unit="sample"):
            await asyncio.sleep(max(0.0, t0 + k / rate - time.monotonic()))
            for m in manifests:
                for d in m.devices:
                    latent = rng.uniform(-1, 1, d.latent_shape).astype(np.float32)
                    envelope = Envelope(
                        m.deployment, f"s-{k}", d.id, m.model_hash, time.time_ns(), 1000, latent
                    )
                    topic = str(latent_topic(m.deployment, f"s-{k}", d.id))
                    await edges.publish(topic, pack(envelope), qos=1)
                    sent += 1
    return sent


def wait_for_maps(api: str, names: list[str], samples: int, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = httpx.get(api + "api/deployments", timeout=10).json()["deployments"]
        stored = {d["deployment"]: d["maps_stored"] for d in listed}
        if all(stored.get(n, 0) >= samples for n in names):
            return
        time.sleep(0.5)
    raise SystemExit(f"not every map stored within {timeout} s: {stored}")


def serve(api: str, names: list[str], requests: int) -> None:
    import httpx
    from tqdm import tqdm

    with httpx.Client(base_url=api, timeout=30) as http:
        sample = http.get(f"api/deployments/{names[0]}/maps/latest").json()["sample_id"]
        paths = itertools.cycle(
            [f"api/deployments/{n}/maps/latest" for n in names]
            + [f"api/deployments/{n}/maps?limit=100" for n in names]
            + [f"api/deployments/{n}/devices" for n in names]
            + [f"api/deployments/{n}/health" for n in names]
            + ["api/deployments", f"api/deployments/{names[0]}/maps/{sample}.png?version=1"]
        )
        for path in tqdm(itertools.islice(paths, requests), total=requests, desc="serve"):
            http.get(path).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="postgresql://... (an empty database)")
    parser.add_argument("--deployments", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200, help="per deployment")
    parser.add_argument("--rate", type=float, default=5.0, help="samples/s per deployment")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--broker", choices=["mosquitto", "amqtt"], default="mosquitto")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.db.startswith(("postgresql://", "postgres://")):
        parser.error("--db: a postgresql:// URL (the installation this sizes)")

    from epic.shared.bundle import write_bundle

    work = Path(tempfile.mkdtemp(prefix="epic-scaling-"))
    names = [f"dep-{k}" for k in range(args.deployments)]
    bundles = []
    for name in names:
        write_bundle(CHECKPOINT, work / name, name)
        bundles.append(work / name)
    broker_proc, broker = _start_broker(args.broker, work)
    procs: list[subprocess.Popen] = []
    try:
        centres = [start_centre(b, broker, args.db)[0] for b in bundles]
        procs += centres
        api_proc, api = start_api(args.db)
        procs.append(api_proc)

        def snapshot() -> dict[str, float]:
            return {
                "centres": sum(cpu_s(p.pid) for p in centres),
                "broker": cpu_s(broker_proc.pid),
                "postgres": postgres_cpu_s(),
                "api": cpu_s(api_proc.pid),
            }

        time.sleep(3)  # every centre reports once, so the API serves every deployment
        before = snapshot()
        t0 = time.monotonic()
        messages = asyncio.run(stream(broker, bundles, args.samples, args.rate))
        wait_for_maps(api, names, args.samples)
        streamed_s = time.monotonic() - t0
        mid = snapshot()
        serve(api, names, args.requests)
        served_s = time.monotonic() - t0 - streamed_s
        after = snapshot()
    finally:
        stop_processes(*procs, broker_proc)
    maps = args.samples * args.deployments
    per = {
        "centre_ms_per_map": 1000 * (mid["centres"] - before["centres"]) / maps,
        "broker_ms_per_message": 1000 * (mid["broker"] - before["broker"]) / messages,
        "postgres_ms_per_map": 1000 * (mid["postgres"] - before["postgres"]) / maps,
        "api_ms_per_map_followed": 1000 * (mid["api"] - before["api"]) / maps,
        "api_ms_per_request": 1000 * (after["api"] - mid["api"]) / args.requests,
        "postgres_ms_per_request": 1000 * (after["postgres"] - mid["postgres"]) / args.requests,
    }
    result = {
        "deployments": args.deployments,
        "devices": DEVICES,
        "samples_per_deployment": args.samples,
        "rate_per_deployment": args.rate,
        "maps": maps,
        "messages": messages,
        "requests": args.requests,
        "broker": args.broker,
        "stream_s": round(streamed_s, 1),
        "serve_s": round(served_s, 1),
        "requests_per_s": round(args.requests / served_s, 1),
        "cpu_ms": {k: round(v, 3) for k, v in per.items()},
    }
    print(
        f"{args.deployments} deployments x {args.samples} samples at {args.rate}/s, "
        f"{messages} messages ({args.broker}), then {args.requests} API requests:"
    )
    for key, value in per.items():
        print(f"  {key:28s} {value:8.3f}")
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
