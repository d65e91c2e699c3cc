"""What one edge device costs and sends: encode time per sample, and bytes per envelope.

    python -m epic.lab.bench.edge_encode [--threads 1] [--runs 50] [--json out.json]
        [--checkpoint A.pt --checkpoint B.pt]   # several: measured one after the other


1. Encode: ``EncoderRuntime.encode`` (what the daemon runs in its worker thread: the
   per-shot normalization of the device's block, then its encoder) for every device of the
   shipped model, with PyTorch and with onnxruntime, ``--threads`` threads (1: an edge's
   default); median and p95 over ``--runs`` runs a device after a warm-up.
2. Bytes: whole envelopes (header, CRC and all) as ``pack`` writes them for real latents of
   simulated shots, for each latent dtype with and without zstd, and raw-mode envelopes (the
   device's raw block, what the centralized baseline uploads). Sample ids are realistic
   ``sim:`` ids (``flatfault-a-<slot>`` at today's 1 Hz slot), deployment ``demo``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from epic.shared.pool import ShotPool

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "models" / "epic-lite-5.pt"
LATENT_DTYPES = ("int8", "int8-channel", "float16", "float32")
RAW_DTYPES = ("float32", "float16")


def bench_encode(bundle: Path, blocks: dict, threads: int, runs: int) -> dict:
    from tqdm import tqdm

    from epic.edge.encoder_runtime import EncoderRuntime
    from epic.shared.bundle import load_manifest

    manifest = load_manifest(bundle)
    out = {}
    for kind in ("torch", "onnx"):
        runtimes = [EncoderRuntime.load(bundle, d.id, kind, threads) for d in manifest.devices]
        times: list[float] = []
        bar = tqdm(total=runs * len(runtimes), desc=f"encode {kind}", unit="sample")
        for rt in runtimes:
            block = blocks[rt.device.id]
            for _ in range(3):  # warm-up: first calls allocate and pick kernels
                rt.encode(block)
            for _ in range(runs):
                t = time.perf_counter()
                rt.encode(block)
                times.append((time.perf_counter() - t) * 1e3)
                bar.update()
        bar.close()
        out[kind] = {
            "median_ms": round(float(np.median(times)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3),
            "runs": len(times),
        }
    return out


def bench_bytes(bundle: Path, pool: ShotPool, samples: int) -> dict:
    from tqdm import tqdm

    from epic.edge.encoder_runtime import EncoderRuntime
    from epic.edge.sources.base import current_slot
    from epic.shared.bundle import load_manifest
    from epic.shared.pool import sample_id
    from epic.shared.wire import Envelope, pack

    manifest = load_manifest(bundle)
    slot = current_slot(time.time_ns(), 1.0)
    sizes: dict[str, list[int]] = {}
    bar = tqdm(total=samples * len(manifest.devices), desc="envelopes", unit="latent")
    for d in manifest.devices:
        runtime = EncoderRuntime.load(bundle, d.id, "torch", 1)
        for i in range(samples):
            block = pool.waveforms(i % pool.size, d.receivers)
            variants = [
                ("latent", runtime.encode(block), LATENT_DTYPES),
                ("raw", block, RAW_DTYPES),
            ]
            for mode, data, dtypes in variants:
                env = Envelope(
                    "demo",
                    sample_id(pool.family, slot + i),
                    d.id,
                    manifest.model_hash,
                    time.time_ns(),
                    1234,
                    data,
                )
                for dtype in dtypes:
                    for comp in ("none", "zstd"):
                        key = f"{mode} {dtype}" + (" +zstd" if comp == "zstd" else "")
                        sizes.setdefault(key, []).append(len(pack(env, dtype, comp)))
            bar.update()
    bar.close()
    return {
        k: {"mean": round(float(np.mean(v)), 1), "min": min(v), "max": max(v)}
        for k, v in sizes.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=50, help="encode runs per device and runtime")
    ap.add_argument("--samples", type=int, default=8, help="shots for the byte counts")
    ap.add_argument("--family", default="flatfault-a")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--checkpoint", type=Path, action="append", help="default: the shipped EPIC-Net"
    )
    args = ap.parse_args()
    results = [_measure(c, args) for c in args.checkpoint or [CHECKPOINT]]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        value = results[0] if len(results) == 1 else results
        args.json.write_text(json.dumps(value, indent=2) + "\n")
        print(f"wrote {args.json}")


def _measure(checkpoint: Path, args: argparse.Namespace) -> dict:

    import torch

    from epic.shared.bundle import write_bundle
    from epic.shared.pool import ShotPool

    torch.set_num_threads(args.threads)
    pool = ShotPool.open(args.family, size=max(args.samples, 1), progress=True)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        manifest = write_bundle(checkpoint, bundle, "demo", onnx=True)
        blocks = {d.id: pool.waveforms(0, d.receivers) for d in manifest.devices}
        encode = bench_encode(bundle, blocks, args.threads, args.runs)
        sizes = bench_bytes(bundle, pool, args.samples)
    result = {
        "checkpoint": str(checkpoint),
        "threads": args.threads,
        "encode_ms": encode,
        "envelope_bytes": sizes,
    }
    head = f"{args.threads} thread(s), median (p95) of {args.runs} x 5 devices"
    print(f"\n{checkpoint}: encode per sample, {head}:")
    for kind, r in encode.items():
        print(f"  {kind:<6} {r['median_ms']:7.3f} ms ({r['p95_ms']:.3f})")
    print("bytes per envelope (one device, one sample), mean [min-max]:")
    for key, r in sizes.items():
        print(f"  {key:<26} {r['mean']:>10.1f} [{r['min']}-{r['max']}]")
    return result


if __name__ == "__main__":
    main()
