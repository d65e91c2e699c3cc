"""The decoder runtime gives what the whole trained model gives, from latents or raw blocks,
batched or not, with missing devices masked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import torch

from epic.central.assembler import ReadySample
from epic.central.decoder import Decoder, DecoderRuntime
from epic.central.validate import Arrival
from epic.shared.bundle import load_central_model
from epic.shared.models.checkpoint import load_checkpoint

from .conftest import ROOT, Feed


def ready(feed: Feed, slot: int, devices: list[str], kind: str = "latent") -> ReadySample:
    source = feed.blocks if kind == "raw" else feed.latents
    arrivals = {
        d: Arrival(kind, feed.sample_id(slot), d, source[d][slot], 1, 0, 2, 0)  # type: ignore[arg-type]
        for d in devices
    }
    missing = [d for d in feed.devices if d not in devices]
    return ReadySample(feed.sample_id(slot), 1, arrivals, devices, missing, 2, 2, 1)


def whole_model(checkpoint: str, feed: Feed, slot: int) -> np.ndarray:
    model, _ = load_checkpoint(ROOT / "models" / checkpoint)
    x = torch.from_numpy(feed.pool.waveforms(slot))[None]
    blocks = [feed.manifest.device(d).receivers for d in feed.devices]
    with torch.inference_mode():
        x = model.normalization.data(x, [range(a, b) for a, b in blocks])
        y = model(x)
    return model.normalization.velocity_inverse(y)[0, 0].numpy()


def test_latents_decode_to_the_whole_models_map(bundle: Path, feed: Feed) -> None:
    _, model = load_central_model(bundle)
    runtime = DecoderRuntime(model, feed.devices, truth=feed.pool.truth_for)
    [m] = runtime.decode([ready(feed, 1, feed.devices)])
    np.testing.assert_allclose(m.velocity, whole_model("epic-lite-5.pt", feed, 1), atol=0.05)
    assert m.velocity.shape == (70, 70) and m.velocity.dtype == np.float32
    assert 0.0 < m.ssim <= 1.0  # scored against the pool's true map


def test_batched_equals_one_by_one_and_missing_devices_are_masked(bundle: Path, feed: Feed) -> None:
    _, model = load_central_model(bundle)
    runtime = DecoderRuntime(model, feed.devices)
    samples = [
        ready(feed, 0, feed.devices),
        ready(feed, 1, ["dev-0", "dev-2", "dev-4"]),
        ready(feed, 2, ["dev-1", "dev-2", "dev-3", "dev-4"]),
    ]
    batched = runtime.decode(samples)
    for sample, m in zip(samples, batched, strict=True):
        [alone] = runtime.decode([sample])
        np.testing.assert_allclose(m.velocity, alone.velocity, atol=0.05)
        assert m.batch_size == 3 and m.sample is sample
    # Garbage in a missing device's place changes nothing: it is masked, not zero-weighted.
    junk = ready(feed, 1, ["dev-0", "dev-2", "dev-4"])
    junk.arrivals["dev-1"] = Arrival(
        "latent", "x", "dev-1", np.full(48, 9.0, np.float32), 1, 0, 2, 0
    )
    latents, present = runtime.inputs([junk])
    present[0, 1] = False
    with torch.inference_mode():
        y = model.normalization.velocity_inverse(model.decode(latents, present))[0, 0].numpy()
    np.testing.assert_allclose(y, batched[1].velocity, atol=0.05)


def test_raw_blocks_decode_with_the_centralized_baseline(raw_bundle: Path, raw_feed: Feed) -> None:
    _, model = load_central_model(raw_bundle)
    runtime = DecoderRuntime(model, raw_feed.devices)
    [m] = runtime.decode([ready(raw_feed, 2, raw_feed.devices, kind="raw")])
    np.testing.assert_allclose(
        m.velocity, whole_model("inversionnet-lite.pt", raw_feed, 2), atol=0.05
    )


def test_decoder_profiles_itself_and_keeps_rolling_figures(bundle: Path, feed: Feed) -> None:
    async def main() -> None:
        _, model = load_central_model(bundle)
        decoder = Decoder(DecoderRuntime(model, feed.devices), threads=1)
        await decoder.start(runs=5)
        assert len(decoder.profiled) == 5 and all(ms > 0 for ms in decoder.profiled)
        assert decoder.p95_ms >= decoder.batch1.percentile(50) > 0
        maps = await decoder.decode([ready(feed, k, feed.devices) for k in range(3)])
        assert len(maps) == 3 and len(decoder.batched) == 1
        await decoder.close()

    asyncio.run(main())
