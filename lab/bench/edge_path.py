"""One edge device's whole path for one sample, stage by stage: what ``epic edge`` does
between a shot's acquisition and the broker's PUBACK.

    python -m epic.lab.bench.edge_path [--samples 300] [--runtime onnx] [--broker amqtt|mosquitto]
        [--json out.json]

The daemon's own parts, one sample at a time (no queueing behind the previous one):
``Producer.make`` on the producer's worker thread (read the shot, normalize, encode, pack),
``Outbox.append`` (the SQLite commit that makes the envelope survive a crash) and the
publisher's read of it, then its QoS 1 publish to a real broker (its own process, as in
the field) until the PUBACK, and the outbox delete that follows. The source is
``sim:flatfault-a`` (shots from the cached pool, as the demo and ``epic bench`` read them),
the device ``dev-2`` of the shipped EPIC-Net lite, one encoder thread (an edge's default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from epic.lab.bench.decode import CHECKPOINT, _start_broker, stop_processes
from epic.lab.bench.stats import write_json

# "path": acquisition to PUBACK, the envelope safe at the broker; the delete that follows
# is off the path (the next sample does not wait for it in the daemon).
STAGES = ("make", "outbox_append", "publish_puback", "path", "outbox_delete")


async def _run(bundle: Path, url: str, runtime: str, samples: int, work: Path) -> dict:
    import aiomqtt
    from tqdm import tqdm

    from epic.edge.encoder_runtime import EncoderRuntime
    from epic.edge.health import EdgeStats
    from epic.edge.outbox import Outbox
    from epic.edge.producer import Producer
    from epic.edge.sources import open_source
    from epic.shared.manifest import load_manifest

    manifest = load_manifest(bundle)
    device = manifest.device("dev-2")
    encoder = EncoderRuntime.load(bundle, device.id, runtime, 1)
    source = open_source("sim:flatfault-a", device.receivers, 100.0, start_slot=0, pool_size=32)
    outbox = await Outbox.open(work / "outbox.sqlite", 64 << 20)
    producer = Producer(manifest, device, source, encoder, outbox, EdgeStats(), "int8", "none")
    worker = ThreadPoolExecutor(1, thread_name_prefix="encoder")
    loop = asyncio.get_running_loop()
    times: dict[str, list[float]] = {s: [] for s in STAGES}
    sizes: list[int] = []
    host, port = url.removeprefix("mqtt://").split(":")
    slots = source.slots()
    try:
        async with aiomqtt.Client(host, int(port), identifier="edge-path-bench") as client:
            for k in tqdm(range(samples + 10), desc="edge path", unit="sample"):
                slot = next(slots)
                t0 = time.perf_counter()
                packed = await loop.run_in_executor(worker, producer.make, slot)
                t1 = time.perf_counter()
                await outbox.append(packed.topic, packed.payload, packed.acquired_ns)
                [row] = await outbox.peek(1)  # what the publisher reads back
                t2 = time.perf_counter()
                await client.publish(row.topic, row.payload, qos=1)
                t3 = time.perf_counter()
                await outbox.delete([row.id])
                t4 = time.perf_counter()
                if k < 10:  # warm-up: first calls allocate and pick kernels
                    continue
                for stage, (a, b) in zip(
                    STAGES, [(t0, t1), (t1, t2), (t2, t3), (t0, t3), (t3, t4)], strict=True
                ):
                    times[stage].append((b - a) * 1e3)
                sizes.append(len(packed.payload))
    finally:
        worker.shutdown()
        await outbox.close()
    return {
        stage: {
            "p50_ms": round(float(np.median(v)), 3),
            "p95_ms": round(float(np.percentile(v, 95)), 3),
        }
        for stage, v in times.items()
    } | {"envelope_bytes": int(np.mean(sizes)), "samples": samples, "runtime": encoder.kind}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--runtime", choices=["onnx", "torch"], default="onnx")
    ap.add_argument("--broker", choices=["amqtt", "mosquitto"], default="amqtt")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    from epic.shared.bundle import write_bundle

    with tempfile.TemporaryDirectory(prefix="epic-edge-path-") as tmp:
        work = Path(tmp)
        bundle = work / "bundle"
        write_bundle(CHECKPOINT, bundle, "bench", onnx=True)
        broker, url = _start_broker(args.broker, work)
        try:
            figures = asyncio.run(_run(bundle, url, args.runtime, args.samples, work))
        finally:
            stop_processes(broker)
    figures |= {"broker": args.broker, "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    for stage in STAGES:
        f = figures[stage]
        print(f"{stage:16s} p50 {f['p50_ms']:7.3f} ms   p95 {f['p95_ms']:7.3f} ms")
    print(f"envelope {figures['envelope_bytes']} B, {args.samples} samples, {figures['runtime']}")
    if args.json:
        write_json(args.json, figures)


if __name__ == "__main__":
    main()
