"""EPIC-Net: shapes, gradients, masking of missing devices, separable encoders."""

import itertools

import pytest
import torch

from epic.shared.models.checkpoint import load_checkpoint, save_checkpoint
from epic.shared.models.registry import build_model

torch.set_num_threads(1)


def batch(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 5, 1000, 70, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("epic", "lite", 5).eval()


def test_forward_backward():
    m = build_model("epic", "lite", 5)
    y = m(batch())
    assert y.shape == (2, 1, 70, 70) and y.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("n_devices", [2, 10, 70])
def test_any_number_of_devices_with_the_same_architecture(n_devices):
    m = build_model("epic", "lite", n_devices).eval()
    with torch.no_grad():
        y = m(batch(1))
    assert y.shape == (1, 1, 70, 70) and torch.isfinite(y).all()
    # Beyond the encoders, the parameters do not depend on N.
    five = build_model("epic", "lite", 5)
    centre = {k: v.shape for k, v in m.state_dict().items() if not k.startswith("encoders.")}
    assert centre == {
        k: v.shape for k, v in five.state_dict().items() if not k.startswith("encoders.")
    }


def test_every_non_empty_subset_decodes_and_ignores_the_missing(model):
    x, other = batch(1, 1), batch(1, 2)
    with torch.no_grad():
        for k in range(1, 6):
            for subset in itertools.combinations(range(5), k):
                present = torch.zeros(1, 5, dtype=torch.bool)
                present[0, list(subset)] = True
                latents = model.encode(x)
                y = model.decode(latents, present)
                assert torch.isfinite(y).all()
                # Replace every missing device's latent with another shot's, or with NaN.
                swapped = model.encode(other)
                mixed = [latents[i] if i in subset else swapped[i] for i in range(5)]
                torch.testing.assert_close(model.decode(mixed, present), y)
                poisoned = [
                    latents[i] if i in subset else torch.full_like(latents[i], torch.nan)
                    for i in range(5)
                ]
                torch.testing.assert_close(model.decode(poisoned, present), y)


def test_masks_are_per_sample(model):
    x = batch(2, 3)
    present = torch.tensor([[True] * 5, [True, False, True, False, True]])
    with torch.no_grad():
        both = model(x, present)
        alone = model(x[1:], present[1:])
    torch.testing.assert_close(both[1:], alone)


def test_no_device_present_is_refused(model):
    with pytest.raises(ValueError, match="at least one present device"):
        model(batch(1), torch.zeros(1, 5, dtype=torch.bool))


def test_encoder_runs_alone_on_its_receivers(model):
    x = batch(1, 4)
    with torch.no_grad():
        for i, block in enumerate(model.blocks):
            latent = model.encoder(i)(x[..., block.start : block.stop])
            assert latent.shape == (1, *model.latent_shape(i))
            assert latent.abs().max() < 1  # bounded, for int8 on the wire
            torch.testing.assert_close(latent, model.encode(x)[i])


def test_checkpoint_round_trip(model, tmp_path):
    save_checkpoint(tmp_path / "m.pt", model, note="test")
    loaded, meta = load_checkpoint(tmp_path / "m.pt")
    assert meta == {"note": "test"} and loaded.config() == model.config()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch(1)), model(batch(1)))


def test_unknown_options_are_named():
    with pytest.raises(ValueError, match="unknown epic option"):
        build_model("epic", "lite", 5, colour="blue")
    with pytest.raises(ValueError, match="preset='huge'"):
        build_model("epic", "huge", 5)


def test_attention_only_in_the_coarse_blocks(model):
    levels = model.hparams["attn_levels"]
    assert [a is not None for a in model.blocks_attn] == [i < levels for i in range(5)]
    assert model.encoders[0].decimation.factor == model.hparams["decimate"]


def test_a_checkpoint_from_before_decimation_rebuilds_its_own_architecture(tmp_path):
    # Written before `decimate` and `attn_levels` existed: its hparams lack them.
    old = build_model("epic", "lite", 5, decimate=1, attn_levels=5).eval()
    save_checkpoint(tmp_path / "old.pt", old)
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    for key in ("decimate", "attn_levels"):
        del payload["config"]["hparams"][key]
    torch.save(payload, tmp_path / "old.pt")
    loaded, _ = load_checkpoint(tmp_path / "old.pt")
    assert (loaded.hparams["decimate"], loaded.hparams["attn_levels"]) == (1, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch(1)), old(batch(1)))
