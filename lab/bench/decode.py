"""What the centre costs and carries on this machine: decode time per batch size, and the
maps per second the whole service sustains through a real broker.

    python -m epic.lab.bench.decode [--threads 2] [--samples 400] [--broker amqtt|mosquitto]
        [--devices 70]

1. Decode: ``DecoderRuntime.decode`` (what the service runs in its worker thread) on
   batches of 1, 8 and 16 samples of the shipped model, all devices present, latents drawn
   in the encoder's tanh range; p50/p95 over ``--runs`` runs after a warm-up, with PyTorch
   and with onnxruntime (the bundle's ``central.onnx``) one after the other in one run.
   Then batch 1 again, each decode after a pause (``--pauses``, ms), as a live centre
   decodes: back to back the weights stay in the CPU's caches, after a pause they do not.
2. Service: a broker and ``epic central`` as subprocesses (as in the field); this process
   publishes ``--samples`` samples x N devices of int8 envelopes as fast as the broker takes
   them and counts the maps the centre publishes on ``epic/<dep>/map/+``. Maps per second =
   samples / (last map - first publish).

``--devices N`` other than the shipped 5: an architecture-identical, **untrained** EPIC-Net
lite for N devices (as ``epic bench``'s throughput runs build), wire code included. Speed
does not depend on the weights; its maps mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from epic.lab.bench.stats import write_json

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models" / "epic-lite-5.pt"


def bench_decode(bundle: Path, threads: int, runs: int, sizes: list[int]) -> dict:
    import torch
    from tqdm import tqdm

    from epic.central.assembler import ReadySample
    from epic.central.decoder import DecoderRuntime
    from epic.central.validate import Arrival
    from epic.shared.bundle import load_central_model, load_central_onnx

    torch.set_num_threads(threads)
    manifest, model = load_central_model(bundle)
    runtimes = {
        "torch": DecoderRuntime(model, manifest.device_ids),
        "onnxruntime": DecoderRuntime(
            model, manifest.device_ids, session=load_central_onnx(bundle, manifest, threads)
        ),
    }
    rng = np.random.default_rng(0)

    def sample(k: int) -> ReadySample:
        arrivals = {
            d.id: Arrival(
                "latent",
                f"s{k}",
                d.id,
                rng.uniform(-1, 1, d.latent_shape).astype(np.float32),
                1,
                0,
                2,
                560,
            )
            for d in manifest.devices
        }
        return ReadySample(f"s{k}", 1, arrivals, manifest.device_ids, [], 2, 2, 1)

    out: dict = {name: {} for name in runtimes}
    for size in sizes:
        batch = [sample(k) for k in range(size)]
        times: dict[str, list[float]] = {name: [] for name in runtimes}
        for name, runtime in runtimes.items():
            # One runtime at a time, as a centre runs one: interleaved, each one's idle
            # worker threads (OpenMP's, onnxruntime's) slow the other down.
            for _ in range(3):
                runtime.decode(batch)
            desc = f"decode {name} batch {size:>2}"
            for _ in tqdm(range(runs), desc=desc, unit="run", leave=False):
                t0 = time.perf_counter()
                runtime.decode(batch)
                times[name].append((time.perf_counter() - t0) * 1000)
        for name in runtimes:
            p50, p95 = np.percentile(times[name], [50, 95])
            out[name][size] = {
                "p50_ms": round(p50, 2),
                "p95_ms": round(p95, 2),
                "per_sample_p50_ms": round(p50 / size, 2),
                "maps_per_s": round(1000 * size / p50, 1),
            }
            print(
                f"decode {name:<11} batch {size:>2}: p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
                f"({p50 / size:.1f} ms a sample, {1000 * size / p50:.0f} maps/s)"
            )
        ratio = out["torch"][size]["p50_ms"] / out["onnxruntime"][size]["p50_ms"]
        print(f"decode batch {size:>2}: onnxruntime {ratio:.2f}x faster than torch")
    return out


def bench_pauses(bundle: Path, threads: int, runs: int, pauses_ms: list[float]) -> dict:
    """Batch-1 onnxruntime decode time after the thread slept ``pause`` ms, as a live centre
    decodes: one sample every 200 ms at 5 Hz, every 2 s at 0.5 Hz, nothing in between."""
    import torch
    from tqdm import tqdm

    from epic.central.decoder import DecoderRuntime
    from epic.shared.bundle import load_central_model, load_central_onnx

    torch.set_num_threads(threads)
    manifest, model = load_central_model(bundle)
    runtime = DecoderRuntime(
        model, manifest.device_ids, session=load_central_onnx(bundle, manifest, threads)
    )
    out = {}
    for pause in pauses_ms:
        times = []
        runtime.profile(runs=1, warmup=3)
        for _ in tqdm(range(runs), desc=f"decode after {pause:g} ms", unit="run", leave=False):
            time.sleep(pause / 1000)
            times.append(runtime.profile(runs=1, warmup=0)[0])
        p50, p95 = np.percentile(times, [50, 95])
        out[f"{pause:g}"] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2)}
        print(
            f"decode onnxruntime batch  1 after a {pause:g} ms pause: "
            f"p50 {p50:5.1f} ms  p95 {p95:5.1f} ms"
        )
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_broker(kind: str, work: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    if kind == "mosquitto":
        conf = work / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
        )
        cmd = [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)]
    else:
        cmd = [sys.executable, "-m", "epic", "broker", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    _wait_port(port, proc)
    return proc, f"mqtt://127.0.0.1:{port}"


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"broker exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("broker did not listen")


def _start_centre(bundle: Path, url: str, threads: int, work: Path) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        "-m",
        "epic",
        "central",
        "--bundle",
        str(bundle),
        "--broker",
        url,
        "--port",
        "0",
        "--db",
        str(work / "central.sqlite"),
        "--threads",
        str(threads),
        "--max-open-samples",
        "4096",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    assert proc.stdout is not None  # stdout=PIPE
    while line := proc.stdout.readline():
        if m := re.search(r"monitor at (http://\S+)", line):
            return proc, m[1]
    raise SystemExit(f"epic central did not start (exit {proc.poll()})")


async def _publish_and_count(url: str, bundle: Path, samples: int) -> dict:
    import aiomqtt
    from tqdm import tqdm

    from epic.shared.bundle import load_manifest
    from epic.shared.wire import MAP, Envelope, latent_topic, pack, topic_filter

    manifest = load_manifest(bundle)
    rng = np.random.default_rng(1)
    now = time.time_ns()
    messages = [
        (
            str(latent_topic(manifest.deployment, f"bench-{k}", d.id)),
            pack(
                Envelope(
                    manifest.deployment,
                    f"bench-{k}",
                    d.id,
                    manifest.model_hash,
                    now,
                    1000,
                    rng.uniform(-1, 1, d.latent_shape).astype(np.float32),
                )
            ),
        )
        for k in range(samples)
        for d in manifest.devices
    ]
    host, port = url.removeprefix("mqtt://").rsplit(":", 1)
    quiet = logging.getLogger("bench.mqtt")
    quiet.setLevel(logging.ERROR)  # aiomqtt warns of every publish beyond its own comfort
    seen: list[float] = []
    async with (
        aiomqtt.Client(host, int(port), identifier="bench-reader", logger=quiet) as reader,
        aiomqtt.Client(
            host, int(port), identifier="bench-edges", max_inflight_messages=200, logger=quiet
        ) as edges,
    ):
        await reader.subscribe(str(topic_filter(manifest.deployment, MAP)), qos=1)
        bar = tqdm(total=samples, desc="maps", unit="map")

        async def count() -> None:
            async for _ in reader.messages:
                seen.append(time.perf_counter())
                bar.update()
                if len(seen) == samples:
                    return

        counter = asyncio.create_task(count())
        t0 = time.perf_counter()
        for i in range(0, len(messages), 200):  # 200 in flight: as fast as the broker acks
            await asyncio.gather(*(edges.publish(t, p, qos=1) for t, p in messages[i : i + 200]))
        published = time.perf_counter() - t0
        try:
            async with asyncio.timeout(300):
                await counter
        finally:
            bar.close()
    elapsed = seen[-1] - t0
    lo, hi = seen[len(seen) // 10], seen[(9 * len(seen)) // 10]
    steady = (len(seen) * 8 // 10) / (hi - lo) if hi > lo else None
    return {
        "samples": samples,
        "devices": len(manifest.devices),
        "messages": len(messages),
        "publish_s": round(published, 2),
        "publish_msgs_per_s": round(len(messages) / published, 1),
        "maps_per_s": round(samples / elapsed, 1),
        "maps_per_s_steady": round(steady, 1) if steady else None,
    }


def bench_service(bundle: Path, threads: int, samples: int, broker: str) -> dict:
    import httpx

    work = Path(tempfile.mkdtemp(prefix="epic-bench-"))
    broker_proc, url = _start_broker(broker, work)
    centre = None
    try:
        centre, http = _start_centre(bundle, url, threads, work)
        result = asyncio.run(_publish_and_count(url, bundle, samples))
        health = httpx.get(http + "api/health", timeout=10).json()
        result["broker"] = broker
        result["health"] = {
            k: health.get(k)
            for k in (
                "maps_stored",
                "rejected",
                "samples_dropped",
                "decode_batch1_ms_p50",
                "decode_batched_ms_p50",
                "decode_batched_ms_p95",
                "decode_ms_p95",
            )
        }
        print(
            f"service ({broker}): {samples} samples x {result['devices']} devices, published in "
            f"{result['publish_s']} s ({result['publish_msgs_per_s']} msg/s); "
            f"{result['maps_per_s']} maps/s overall, {result['maps_per_s_steady']} steady"
        )
        return result
    finally:
        stop_processes(centre, broker_proc)
        shutil.rmtree(work, ignore_errors=True)


def stop_processes(*procs: subprocess.Popen | None) -> None:
    """SIGTERM each running one, in order; SIGKILL one that takes over 30 s."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _untrained(devices: int, out: Path) -> Path:
    """The shipped model's architecture for ``devices`` devices, weights at random."""
    import torch

    from epic.shared.models.checkpoint import load_checkpoint, save_checkpoint
    from epic.shared.models.registry import build_from_config

    config = load_checkpoint(CHECKPOINT)[0].config()
    torch.manual_seed(0)
    model = build_from_config({**config, "n_devices": devices}).eval()
    save_checkpoint(out, model, note=f"untrained, {devices} devices: for speed only")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--sizes", default="1,8,16")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--broker", choices=["amqtt", "mosquitto"], action="append")
    ap.add_argument("--pauses", default="0,20,200", help="ms before a batch-1 decode")
    ap.add_argument("--skip-service", action="store_true")
    ap.add_argument("--devices", type=int, default=5, help="N: other than 5, untrained")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    from epic.shared.bundle import write_bundle

    with tempfile.TemporaryDirectory(prefix="epic-bench-bundle-") as tmp:
        bundle = Path(tmp) / "bundle"
        checkpoint = CHECKPOINT
        if args.devices != 5:
            checkpoint = _untrained(args.devices, Path(tmp) / "untrained.pt")
        write_bundle(checkpoint, bundle, "bench")
        figures: dict = {
            "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
            "threads": args.threads,
            "devices": args.devices,
            "trained": args.devices == 5,
        }
        sizes = [int(s) for s in args.sizes.split(",")]
        figures["decode"] = bench_decode(bundle, args.threads, args.runs, sizes)
        pauses = [float(p) for p in args.pauses.split(",") if p]
        figures["after_pause"] = bench_pauses(bundle, args.threads, args.runs, pauses)
        if not args.skip_service:
            figures["service"] = [
                bench_service(bundle, args.threads, args.samples, b)
                for b in (args.broker or ["amqtt"])
            ]
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
