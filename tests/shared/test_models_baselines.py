"""The three baselines (InversionNet, SLA, FLA): shapes, masking, presets, configs."""

from __future__ import annotations

import json

import pytest
import torch

from epic.shared.models.registry import build_from_config, build_model

BASELINES = ("inversionnet", "sla", "fla")
# Parameters of OpenFWI's InversionNet (lanl/OpenFWI network.py, commit 4dd6c35, default
# dims 32..512): counted by instantiating that reference class outside this repository.
OPENFWI_INVERSIONNET_PARAMS = 24_409_123


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def data(batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 5, 1000, 70, generator=g) * 2 - 1


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_inversionnet_paper_is_openfwis():
    model = build_model("inversionnet", "paper", 5)
    assert n_params(model) == OPENFWI_INVERSIONNET_PARAMS
    conv8 = model.net[0].head[0]
    assert tuple(conv8.weight.shape) == (512, 256, 8, 9)


@pytest.mark.parametrize("name", BASELINES)
def test_lite_forward_backward(name):
    model = build_model(name, "lite", 5).train()
    out = model(data(2))
    assert out.shape == (2, 1, 70, 70)
    assert torch.isfinite(out).all() and out.abs().max() <= 1
    out.mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", BASELINES)
def test_paper_forward(name):
    model = build_model(name, "paper", 5).eval()
    with torch.no_grad():
        out = model(data(1))
    assert out.shape == (1, 1, 70, 70)
    assert torch.isfinite(out).all() and out.abs().max() <= 1


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("n_devices", [2, 5])
def test_missing_device_changes_nothing(name, n_devices):
    model = build_model(name, "lite", n_devices).eval()
    gen = torch.Generator().manual_seed(n_devices)
    batch = 4
    present = torch.rand(batch, n_devices, generator=gen) < 0.5
    present[torch.arange(batch), torch.randint(n_devices, (batch,), generator=gen)] = True
    x = data(batch)
    noisy = x.clone()
    for b, block in enumerate(model.blocks):
        absent = ~present[:, b]
        noisy[absent, ..., block.start : block.stop] = data(int(absent.sum()), seed=9)[
            ..., block.start : block.stop
        ]
    with torch.no_grad():
        out = model(x, present)
        out_noisy = model(noisy, present)
        latents = model.encode(x)
        poisoned = [
            torch.where(present[:, i].view(-1, *[1] * (z.dim() - 1)), z, torch.nan)
            for i, z in enumerate(latents)
        ]
        out_poisoned = model.decode(poisoned, present)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out_noisy, out, rtol=0, atol=1e-6)
    torch.testing.assert_close(out_poisoned, out, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", BASELINES)
def test_device_absent_from_whole_batch_may_send_anything(name):
    model = build_model(name, "lite", 5).eval()
    present = torch.ones(2, 5, dtype=torch.bool)
    present[:, 3] = False
    with torch.no_grad():
        latents = model.encode(data(2))
        expected = model.decode(latents, present)
        latents[3] = None  # type: ignore[call-overload]
        assert torch.equal(model.decode(latents, present), expected)
        latents[3] = torch.zeros(7)
        assert torch.equal(model.decode(latents, present), expected)
        with pytest.raises(ValueError, match="present device"):
            model.decode(latents, torch.ones(2, 5, dtype=torch.bool))


@pytest.mark.parametrize("name", BASELINES)
def test_encoders_run_alone(name):
    model = build_model(name, "lite", 5).eval()
    with torch.no_grad():
        for i, block in enumerate(model.blocks):
            z = model.encoder(i)(torch.zeros(2, 5, 1000, len(block)))
            assert tuple(z.shape) == (2, *model.latent_shape(i))


@pytest.mark.parametrize(
    ("name", "n_devices"),
    [(m, n) for m in ("inversionnet", "sla") for n in (1, 2, 5, 10, 70)]
    + [("fla", n) for n in (2, 5, 10, 70)],
)
def test_device_counts(name, n_devices):
    model = build_model(name, "lite", n_devices).eval()
    assert sum(len(b) for b in model.blocks) == 70
    present = torch.zeros(2, n_devices, dtype=torch.bool)
    present[0] = True
    present[1, n_devices - 1] = True  # one device alone, the easternmost
    with torch.no_grad():
        out = model(data(2), present)
        last = model.blocks[-1]
        z = model.encoder(n_devices - 1)(data(1)[..., last.start : last.stop])
    assert out.shape == (2, 1, 70, 70) and torch.isfinite(out).all()
    assert tuple(z.shape[1:]) == model.latent_shape(n_devices - 1)


def test_fla_strips_are_the_devices_columns():
    model = build_model("fla", "lite", 5).eval()
    x = data(1)
    present = torch.tensor([[True, False, True, True, False]])
    with torch.no_grad():
        out = model(x, present)
        for i, block in enumerate(model.blocks):
            cols = out[..., block.start : block.stop]
            if present[0, i]:
                assert torch.equal(cols, model.encoder(i)(x[..., block.start : block.stop]))
            else:
                assert torch.equal(cols, torch.zeros_like(cols))


@pytest.mark.parametrize("name", BASELINES)
def test_config_round_trips(name):
    model = build_model(name, "lite", 5, dim1=6, t_stride=5)
    config = json.loads(json.dumps(model.config()))
    again = build_from_config(config)
    assert again.config() == model.config()
    assert again.hparams["dim1"] == 6 and again.hparams["t_stride"] == 5
    again.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="unknown"):
        build_model(name, "lite", 5, depth=3)
