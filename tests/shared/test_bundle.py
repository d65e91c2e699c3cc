"""Deployment bundles: what each machine gets, and that the split changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from epic.cli import main
from epic.shared.bundle import load_central_model, load_edge_encoder, load_manifest, write_bundle
from epic.shared.errors import DataError
from epic.shared.models.checkpoint import load_checkpoint, save_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "epic-lite-5.pt"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    write_bundle(SHIPPED, out, "site-a", 5, onnx=True)
    return out


def test_manifest_says_who_owns_what(bundle: Path) -> None:
    raw = json.loads((bundle / "manifest.json").read_text())
    assert raw["deployment"] == "site-a" and len(raw["model_hash"]) == 16
    assert [d["id"] for d in raw["devices"]] == [f"dev-{i}" for i in range(5)]
    assert [d["receivers"] for d in raw["devices"]] == [
        [0, 14],
        [14, 28],
        [28, 42],
        [42, 56],
        [56, 70],
    ]
    manifest = load_manifest(bundle)
    for d in manifest.devices:
        assert (bundle / d.edge_file).stat().st_size == d.edge_bytes
        assert d.edge_bytes < 0.15 * manifest.total_bytes  # a small fraction of the whole
        assert d.latent_shape == (48,)  # the wire code: 48 numbers, not 8 x 64 tokens
        assert (bundle / d.onnx_file).is_file()


def test_the_split_computes_what_the_whole_model_does(bundle: Path) -> None:
    full, _ = load_checkpoint(SHIPPED)
    _, central = load_central_model(bundle)
    x = torch.randn(2, 5, 1000, 70)
    latents = []
    for i, block in enumerate(full.blocks):
        _, encoder = load_edge_encoder(bundle, f"dev-{i}")
        part = x[..., block.start : block.stop]
        latents.append(encoder(part))
        torch.testing.assert_close(latents[-1], full.encoder(i)(part))
    present = torch.tensor([[True] * 5, [True, False, True, True, True]])
    with torch.inference_mode():
        torch.testing.assert_close(central.decode(latents, present), full.decode(latents, present))


def test_onnx_encoder_matches_torch(bundle: Path) -> None:
    import onnxruntime

    _, encoder = load_edge_encoder(bundle, "dev-3")
    x = torch.randn(1, 5, 1000, 14)
    session = onnxruntime.InferenceSession(str(bundle / "edge" / "dev-3.onnx"))
    (got,) = session.run(None, {"waveforms": x.numpy()})
    # The graph takes raw waveforms and normalizes them itself.
    assert load_manifest(bundle).device("dev-3").onnx_normalizes
    normalization = load_checkpoint(SHIPPED)[0].normalization
    expected = encoder(normalization.data(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_hash_follows_the_weights(bundle: Path, tmp_path: Path) -> None:
    again = write_bundle(SHIPPED, tmp_path / "again", "site-b")
    assert again.model_hash == load_manifest(bundle).model_hash
    model, meta = load_checkpoint(SHIPPED)
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # "retrained"
    save_checkpoint(tmp_path / "retrained.pt", model, **meta)
    assert write_bundle(tmp_path / "retrained.pt", tmp_path / "r", "x").model_hash != (
        again.model_hash
    )


def test_edge_refuses_a_file_from_another_model(bundle: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    model, meta = load_checkpoint(SHIPPED)
    with torch.no_grad():
        next(model.parameters()).mul_(0.5)
    save_checkpoint(tmp_path / "other.pt", model, **meta)
    write_bundle(tmp_path / "other.pt", other, "site-a")
    (other / "edge" / "dev-0.pt").write_bytes((bundle / "edge" / "dev-0.pt").read_bytes())
    with pytest.raises(DataError, match="model hash"):
        load_edge_encoder(other, "dev-0")
    with pytest.raises(DataError, match="no such device"):
        load_edge_encoder(bundle, "dev-9")
    with pytest.raises(DataError, match="not a deployment bundle"):
        load_manifest(tmp_path)


def test_deploy_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["deploy", "-c", str(SHIPPED), "-o", str(tmp_path / "b"), "--device-ids", "w,x,y,z,e"])
    out = capsys.readouterr().out
    assert "model hash" in out and "central.pt" in out
    assert load_manifest(tmp_path / "b").device_ids == ["w", "x", "y", "z", "e"]
    for argv, message in [
        (["--devices", "3"], "trained for 5 devices"),
        (["--device-ids", "a,b"], "2 device ids"),
        (["--deployment", "no spaces"], "deployment name"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(["deploy", "-c", str(SHIPPED), "-o", str(tmp_path / "c"), *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("epic: error:") and message in err and "\n" not in err


def test_central_onnx_decodes_as_pytorch_does(tmp_path):
    import numpy as np

    from epic.central.assembler import ReadySample
    from epic.central.decoder import DecoderRuntime
    from epic.central.validate import Arrival
    from epic.shared.bundle import load_central_model, load_central_onnx, write_bundle
    from epic.shared.errors import DataError

    bundle = tmp_path / "b"
    manifest = write_bundle(SHIPPED, bundle, "dep")
    assert manifest.central_onnx == "central.onnx" and len(manifest.central_onnx_sha256) == 64
    _, model = load_central_model(bundle)
    session = load_central_onnx(bundle, manifest, threads=1)
    rng = np.random.default_rng(0)

    def sample(k: int, missing: set[str]) -> ReadySample:
        arrivals = {
            d.id: Arrival(
                "latent",
                f"s{k}",
                d.id,
                rng.uniform(-1, 1, d.latent_shape).astype(np.float32),
                1,
                0,
                2,
                9,
            )
            for d in manifest.devices
            if d.id not in missing
        }
        used = [d for d in manifest.device_ids if d not in missing]
        return ReadySample(f"s{k}", 1, arrivals, used, sorted(missing), 2, 2, 1)

    batch = [sample(0, set()), sample(1, {"dev-0"}), sample(2, {"dev-1", "dev-3", "dev-4"})]
    torch_maps = DecoderRuntime(model, manifest.device_ids).decode(batch)
    onnx_runtime = DecoderRuntime(model, manifest.device_ids, session=session)
    assert onnx_runtime.runtime == "onnxruntime"
    for a, b in zip(torch_maps, onnx_runtime.decode(batch), strict=True):
        assert np.abs(a.velocity - b.velocity).max() < 0.05  # m/s, of 1500-4500
    # One sample alone takes the session whose batch dimension is fixed at 1.
    for a, s in zip(torch_maps, batch, strict=True):
        (alone,) = onnx_runtime.decode([s])
        assert np.abs(a.velocity - alone.velocity).max() < 0.05
    assert len(onnx_runtime.profile(runs=2, warmup=1)) == 2
    (bundle / "central.onnx").write_bytes(b"not the exported graph")
    with pytest.raises(DataError, match="not the file this manifest"):
        load_central_onnx(bundle, manifest)
