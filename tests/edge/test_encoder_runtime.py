"""The edge's encoder runtime against the full model, and onnxruntime against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from epic.edge.encoder_runtime import EncoderRuntime, normalize_numpy
from epic.shared.bundle import write_bundle
from epic.shared.data.normalization import Normalization
from epic.shared.errors import DataError
from epic.shared.pool import ShotPool
from tests.edge.conftest import CHECKPOINT


def reference_latent(full_model: Any, waveforms: np.ndarray, device: int) -> np.ndarray:
    """What the trained model's own encoder makes of the device's block."""
    block = full_model.blocks[device]
    x = torch.from_numpy(waveforms[None, ..., block.start : block.stop].copy())
    with torch.inference_mode():
        return full_model.encoder(device)(full_model.normalization.data(x))[0].numpy()


@pytest.mark.parametrize("norm", [Normalization(), Normalization(mode="global", scale=0.3)])
def test_numpy_normalization_matches_torch(norm: Normalization, pool: ShotPool) -> None:
    rng = np.random.default_rng(0)
    blocks = [pool.waveforms(0, (14, 28)), rng.normal(0, 1e-3, (5, 1000, 14)).astype(np.float32)]
    blocks.append(np.zeros((5, 1000, 14), np.float32))  # silence: no division by zero
    for block in blocks:
        expected = norm.data(torch.from_numpy(block)).numpy()
        np.testing.assert_allclose(normalize_numpy(block, norm), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("device", ["dev-0", "dev-3"])
def test_torch_runtime_matches_the_full_models_encoder(
    bundle: Path, pool: ShotPool, full_model: Any, device: str
) -> None:
    runtime = EncoderRuntime.load(bundle, device, "torch")
    assert runtime.kind == "torch" and runtime.latent_shape == (48,)
    a, b = runtime.device.receivers
    latent = runtime.encode(pool.waveforms(1, (a, b)))
    expected = reference_latent(full_model, pool.waveforms(1), runtime.device.index)
    assert latent.dtype == np.float32 and latent.shape == (48,)
    np.testing.assert_allclose(latent, expected, atol=1e-5)


def test_onnx_runtime_matches_torch(bundle: Path, pool: ShotPool) -> None:
    torch_rt = EncoderRuntime.load(bundle, "dev-2", "torch")
    onnx_rt = EncoderRuntime.load(bundle, "dev-2", "auto")
    assert onnx_rt.kind == "onnx"  # auto: onnxruntime is installed and the bundle has .onnx
    block = pool.waveforms(0, torch_rt.device.receivers)
    np.testing.assert_allclose(onnx_rt.normalize(block), torch_rt.normalize(block), atol=1e-5)
    np.testing.assert_allclose(onnx_rt.encode(block), torch_rt.encode(block), atol=1e-4)


def test_an_older_bundle_whose_onnx_takes_normalized_input(
    tmp_path: Path, bundle: Path, pool: ShotPool
) -> None:
    """Bundles written before 2026-12-05 keep working: their ONNX graph has no
    normalization (and their manifest no ``onnx_normalizes``), so the runtime does it."""
    import json
    import shutil
    import warnings

    from epic.shared.bundle import load_edge_encoder

    old = tmp_path / "old"
    shutil.copytree(bundle, old)
    _, encoder = load_edge_encoder(old, "dev-2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            encoder,
            (torch.randn(1, 5, 1000, 14),),
            str(old / "edge/dev-2.onnx"),
            input_names=["waveforms"],
            output_names=["latent"],
            dynamic_axes={"waveforms": {0: "batch"}, "latent": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    raw = json.loads((old / "manifest.json").read_text())
    for device in raw["devices"]:
        del device["onnx_normalizes"]
    (old / "manifest.json").write_text(json.dumps(raw))
    before = EncoderRuntime.load(old, "dev-2", "onnx")
    now = EncoderRuntime.load(bundle, "dev-2", "onnx")
    assert not before.device.onnx_normalizes and now.device.onnx_normalizes
    block = pool.waveforms(0, now.device.receivers)
    np.testing.assert_allclose(before.encode(block), now.encode(block), atol=1e-4)


def test_runtime_choice_and_bad_input(tmp_path: Path, bundle: Path, pool: ShotPool) -> None:
    plain = tmp_path / "plain"
    write_bundle(CHECKPOINT, plain, "plain")  # no --onnx
    assert EncoderRuntime.load(plain, "dev-0", "auto").kind == "torch"
    with pytest.raises(DataError, match="no ONNX encoder"):
        EncoderRuntime.load(plain, "dev-0", "onnx")
    with pytest.raises(DataError, match="no such device"):
        EncoderRuntime.load(bundle, "dev-9", "torch")
    runtime = EncoderRuntime.load(bundle, "dev-0", "torch")
    with pytest.raises(DataError, match="block shape"):
        runtime.encode(pool.waveforms(0))  # all 70 receivers, not the device's 14
