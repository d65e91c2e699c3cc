"""The decoder runtime: ready samples in, velocity maps in m/s out, in ONE worker thread.

``DecoderRuntime`` is the synchronous part (the model, the batching, the masks) and runs in
the thread; ``Decoder`` is its asyncio face: one single-worker executor, so inference never
runs on the event loop and never two at once (torch already spreads one decode over its
intra-op threads). It profiles itself at start (p50/p95 of batch 1 after a warm-up) and
keeps rolling figures, whose p95 the assembler subtracts from each sample's deadline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from epic.central.assembler import ReadySample
from epic.central.ratelimit import RateLimitedLog
from epic.shared.models.base import FWIModel

__all__ = ["DecodedMap", "Decoder", "DecoderRuntime", "Latency", "Truth"]

log = logging.getLogger(__name__)
Truth = Callable[[str], "np.ndarray | None"]


@dataclass(frozen=True)
class DecodedMap:
    sample: ReadySample
    velocity: np.ndarray  # [nz, nx] float32, m/s
    decode_start_ns: int
    decode_end_ns: int
    batch_size: int
    ssim: float | None = None


class Latency:
    """A rolling window of durations (ms) with percentiles."""

    def __init__(self, size: int = 256) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        self._values.append(ms)

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self._values, q)) if self._values else None

    def __len__(self) -> int:
        return len(self._values)


class DecoderRuntime:
    """The model's central half, run synchronously (call it from one thread only).

    ``session``: the bundle's ``central.onnx`` in onnxruntime
    (``epic.shared.bundle.load_central_onnx``), which then runs fusion and decoder: 4.5 ms
    against PyTorch's 9 for one EPIC-lite sample on 2 cores. PyTorch still runs the
    encoders of raw uploads."""

    def __init__(
        self,
        model: FWIModel,
        devices: list[str],
        truth: Truth | None = None,
        session: Any | None = None,
    ) -> None:
        if len(devices) != model.n_devices:
            raise ValueError(f"{len(devices)} device ids for a {model.n_devices}-device model")
        self.model = model.eval()
        self.devices = devices  # the manifest's ids, in the model's device order
        self.truth = truth
        self.session = session
        self._names = [f"latent{i}" for i in range(model.n_devices)] + ["present"]
        self._warn = RateLimitedLog(log)

    @property
    def runtime(self) -> str:
        return "onnxruntime" if self.session is not None else "torch"

    def inputs(self, batch: list[ReadySample]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Per-device latents ``[B, *latent_shape(i)]`` (zeros where missing) and the mask."""
        model, n = self.model, self.model.n_devices
        present = torch.zeros(len(batch), n, dtype=torch.bool)
        latents = [torch.zeros(len(batch), *model.latent_shape(i)) for i in range(n)]
        for b, sample in enumerate(batch):
            for i, device in enumerate(self.devices):
                arrival = sample.arrivals.get(device)
                if arrival is None:
                    continue
                x = torch.from_numpy(np.ascontiguousarray(arrival.data, dtype=np.float32))
                if arrival.kind == "raw":
                    # Exactly what the edge would have done: normalize its own block, then
                    # run its encoder (the validator admits raw only for weightless ones).
                    x = model.encoder(i)(model.normalization.data(x)[None])[0]
                latents[i][b] = x
                present[b, i] = True
        return latents, present

    def decode(self, batch: list[ReadySample]) -> list[DecodedMap]:
        start_ns = time.time_ns()
        with torch.inference_mode():
            y = self._run(*self.inputs(batch))
            velocity = self.model.normalization.velocity_inverse(y)[:, 0].float().numpy()
        end_ns = time.time_ns()
        return [
            DecodedMap(
                s, velocity[b].copy(), start_ns, end_ns, len(batch), self._ssim(s, velocity[b])
            )
            for b, s in enumerate(batch)
        ]

    def _run(self, latents: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
        if self.session is None:
            return self.model.decode(latents, present)
        feed = dict(zip(self._names, [t.numpy() for t in (*latents, present)], strict=True))
        return torch.from_numpy(self.session.run(feed))

    def _ssim(self, sample: ReadySample, velocity: np.ndarray) -> float | None:
        if self.truth is None:
            return None
        try:
            truth = self.truth(sample.sample_id)
            if truth is None:
                return None
            from epic.shared.map_quality import ssim

            true = torch.as_tensor(np.asarray(truth, np.float32).reshape(1, 1, *velocity.shape))
            return float(ssim(torch.from_numpy(velocity)[None, None], true)[0])
        except Exception as exc:  # the ground truth is a demo's extra: never lose the map
            self._warn.warning("truth", "no SSIM for %s: %s", sample.sample_id, exc)
            return None

    def profile(self, runs: int = 10, warmup: int = 3) -> list[float]:
        """Durations (ms) of ``runs`` batch-1 decodes of all devices after ``warmup``, on the
        runtime that decodes the live samples."""
        n = self.model.n_devices
        latents = [torch.zeros(1, *self.model.latent_shape(i)) for i in range(n)]
        present = torch.ones(1, n, dtype=torch.bool)
        times = []
        with torch.inference_mode():
            for k in range(warmup + runs):
                t0 = time.perf_counter()
                self._run(latents, present)
                if k >= warmup:
                    times.append((time.perf_counter() - t0) * 1000.0)
        return times


class Decoder:
    """``DecoderRuntime`` behind a single-worker executor, with rolling latency figures."""

    def __init__(self, runtime: DecoderRuntime, threads: int = 0) -> None:
        self.runtime = runtime
        self.threads = threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="epic-decoder")
        self.batch1 = Latency()  # batch-1 decode time, ms
        self.batched = Latency()  # decode time of batches of 2 or more, ms
        self.per_sample = Latency()  # what one sample waits in decode, any batch
        self.profiled: list[float] = []
        self.in_flight = 0

    async def start(self, runs: int = 10) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, torch.set_num_threads, self.threads)
        self.profiled = await loop.run_in_executor(self._pool, self.runtime.profile, runs)
        for ms in self.profiled:
            self.batch1.add(ms)
            self.per_sample.add(ms)

    @property
    def p95_ms(self) -> float:
        return self.per_sample.percentile(95) or 0.0

    async def decode(self, batch: list[ReadySample]) -> list[DecodedMap]:
        self.in_flight = len(batch)
        try:
            maps = await asyncio.get_running_loop().run_in_executor(
                self._pool, self.runtime.decode, batch
            )
        finally:
            self.in_flight = 0
        ms = (maps[0].decode_end_ns - maps[0].decode_start_ns) / 1e6
        (self.batch1 if len(batch) == 1 else self.batched).add(ms)
        self.per_sample.add(ms)
        return maps

    async def close(self) -> None:
        """Let a decode in flight finish, then stop the thread."""
        await asyncio.to_thread(self._pool.shutdown, wait=True)
