"""``epic compress``: the wire code keeps what the tokens say, the bundle carries it to both
ends, and bad requests fail in one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from epic.lab.train.compress import compress
from epic.shared.bundle import load_central_model, load_edge_encoder, write_bundle
from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.models.checkpoint import load_checkpoint, save_checkpoint
from epic.shared.models.registry import build_model
from epic.shared.models.wire_code import WireDecoder, WireEncoder, fit_pair
from tests.lab.conftest import TINY_EPIC, assert_one_line_error

TOKENS = TINY_EPIC["token_grid"][0] * TINY_EPIC["token_grid"][1] * TINY_EPIC["d_model"]  # 16


@pytest.fixture(scope="module")
def tokens_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny EPIC-Net (untrained: the code describes whatever latents the model makes)."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("compress") / "tokens.pt"
    save_checkpoint(out, build_model("epic", "lite", 5, **TINY_EPIC).eval(), note="test")
    return out


@pytest.fixture(scope="module")
def data(folder_factory: Callable[[str, int], Path]) -> Path:
    return folder_factory("compress", 24)


def _first(folder: Path, model, n: int = 6) -> torch.Tensor:
    ds = OpenFWIDataset([folder], model.normalization, model.blocks, model.geometry)
    return torch.stack([ds[i][0] for i in range(n)])


def test_fit_pair_recovers_a_low_rank_latent_exactly() -> None:
    torch.manual_seed(1)
    basis = torch.linalg.qr(torch.randn(12, 3))[0]  # 3 directions in 12 numbers
    tokens = (torch.randn(40, 3) * torch.tensor([5.0, 2.0, 0.5])) @ basis.T + 0.3
    edge, centre = WireEncoder(12, 3), WireDecoder(4, 3, 3)
    kept = fit_pair(edge, centre, tokens.reshape(40, 4, 3))
    assert float(kept) == pytest.approx(1.0)
    code = edge(tokens.reshape(40, 4, 3))
    # Each coordinate divided by its spread: unit variance, so one int8 scale suits all.
    torch.testing.assert_close(code.std(dim=0), torch.ones(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(centre(code).reshape(40, 12), tokens, atol=1e-5, rtol=0)


def test_full_width_code_decodes_exactly_what_the_tokens_did(
    tokens_checkpoint: Path, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "coded.pt"
    fitted = compress(tokens_checkpoint, [data], TOKENS, out, progress=False)
    assert fitted["samples"] == 24 and len(fitted["variance_kept"]) == 5
    before, _ = load_checkpoint(tokens_checkpoint)
    after, meta = load_checkpoint(out)
    assert meta["note"] == "test" and meta["wire_code"]["dims"] == TOKENS
    assert after.latent_shape(0) == (TOKENS,)
    x = _first(data, before)
    with torch.inference_mode():
        torch.testing.assert_close(after(x), before(x), atol=1e-4, rtol=0)


def test_a_narrow_code_travels_in_the_bundle_and_splits_like_the_whole(
    tokens_checkpoint: Path, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "coded.pt"
    narrow = compress(tokens_checkpoint, [data], 4, out, progress=False)
    wide = compress(tokens_checkpoint, [data], 8, tmp_path / "wide.pt", progress=False)
    kept = zip(narrow["variance_kept"], wide["variance_kept"], strict=True)
    assert all(0 < n < w <= 1 for n, w in kept)
    manifest = write_bundle(out, tmp_path / "bundle", "wire", onnx=True)
    assert all(d.latent_shape == (4,) for d in manifest.devices)
    full, _ = load_checkpoint(out)
    _, central = load_central_model(tmp_path / "bundle")
    x = _first(data, full, 2)
    latents = []
    for i, block in enumerate(full.blocks):
        _, encoder = load_edge_encoder(tmp_path / "bundle", f"dev-{i}")
        latents.append(encoder(x[..., block.start : block.stop]))
        assert latents[-1].shape == (2, 4)
    present = torch.tensor([[True] * 5, [True, False, True, True, False]])
    with torch.inference_mode():
        torch.testing.assert_close(central.decode(latents, present), full.decode(latents, present))
    # The code counts in the model hash: an edge with another code is refused as stale.
    other = write_bundle(tmp_path / "wide.pt", tmp_path / "bundle-wide", "wire")
    assert other.model_hash != manifest.model_hash
    onnx_inputs = json.loads((tmp_path / "bundle" / "manifest.json").read_text())["devices"]
    assert all(d["onnx_file"] for d in onnx_inputs)


def test_bad_requests_fail_in_one_line(cli, tokens_checkpoint: Path, data: Path, tmp_path: Path):
    out = str(tmp_path / "x.pt")
    base = ["compress", "--checkpoint", str(tokens_checkpoint), "--out", out, "--data", str(data)]
    assert_one_line_error(cli(*base, "--dims", "17"), "--dims", "1..16")
    assert_one_line_error(cli(*base, "--dims", "8", "--limit", "5"), "5 samples", "8 directions")
    assert cli(*base, "--dims", "8")[0] == 0
    again = ["compress", "--checkpoint", out, "--out", out + "2", "--data", str(data)]
    assert_one_line_error(cli(*again), "already sends 8 numbers")
    torch.manual_seed(0)
    inv = tmp_path / "inversionnet.pt"
    save_checkpoint(inv, build_model("inversionnet", "lite", 5))
    other = ["compress", "--checkpoint", str(inv), "--out", out, "--data", str(data)]
    assert_one_line_error(cli(*other), "a wire code is for EPIC-Net")
