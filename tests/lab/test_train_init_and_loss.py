"""``epic train --init`` (a fine-tune from a checkpoint's weights) and ``--ssim-weight`` (the
loss's SSIM term): what carries over, what is refused, and that the term scores as the
metric does."""

from __future__ import annotations

import pytest
import torch

from epic.lab.train.loss import map_loss
from epic.lab.train.trainer import TrainConfig, train
from epic.shared import map_quality
from epic.shared.data.normalization import Normalization
from epic.shared.errors import ConfigError, DataError
from epic.shared.models.checkpoint import load_checkpoint, save_checkpoint
from tests.lab.conftest import TINY_EPIC, assert_one_line_error


def config(data, out, **kwargs) -> TrainConfig:
    settings = {"epochs": 1, "batch_size": 4, "lr": 1e-2, "hparams": TINY_EPIC, "progress": False}
    return TrainConfig("epic", [data], out, **{**settings, **kwargs})


def _maps(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 1, 70, 70, generator=g) * 1.6 - 0.8


def test_the_ssim_term_is_one_minus_the_metric():
    norm = Normalization()
    pred, true = _maps(0), _maps(1)
    plain = map_loss(pred, true, norm)
    weighted = map_loss(pred, true, norm, ssim_weight=2.0)
    metric = map_quality.ssim(norm.velocity_inverse(pred), norm.velocity_inverse(true)).mean()
    assert float(weighted - plain) == pytest.approx(2.0 * (1.0 - float(metric)), abs=1e-5)
    assert float(map_loss(true, true, norm, ssim_weight=2.0)) == pytest.approx(0.0, abs=1e-6)


def test_the_ssim_term_has_a_gradient_that_raises_ssim():
    norm = Normalization()
    true = _maps(1)
    pred = torch.nn.functional.avg_pool2d(true, 5, 1, 2).requires_grad_()  # a blurred truth
    map_loss(pred, true, norm, ssim_weight=1.0).backward()
    with torch.no_grad():
        stepped = pred - 0.5 * pred.grad / pred.grad.abs().max()

    def score(y):
        return map_quality.ssim(norm.velocity_inverse(y), norm.velocity_inverse(true)).mean()

    assert score(stepped) > score(pred.detach())


def test_init_starts_from_the_checkpoints_weights(gradient_data, tmp_path):
    first = tmp_path / "first.pt"
    train(config(gradient_data, first, command="epic train first"), log=lambda _: None)
    source, _ = load_checkpoint(first)
    lines: list[str] = []
    second = tmp_path / "second.pt"
    result = train(
        config(gradient_data, second, init=first, lr=1e-12, ssim_weight=0.5), log=lines.append
    )
    assert any("starting from" in line and "first.pt" in line for line in lines)
    tuned, meta = load_checkpoint(second)
    # a learning rate of 1e-12 leaves the weights where they started: the checkpoint's
    for key, value in source.state_dict().items():
        if value.is_floating_point() and "running" not in key:
            assert torch.allclose(tuned.state_dict()[key], value, atol=1e-6), key
    assert meta["init"]["path"] == str(first.resolve())
    assert meta["init"]["command"] == "epic train first"
    assert meta["init"]["train_seconds_before"] == pytest.approx(meta["init"]["train_seconds"])
    assert meta["train"]["ssim_weight"] == 0.5 and result.best["ssim"] > 0
    # a resumed fine-tune keeps its provenance
    more = train(config(gradient_data, second, init=first, epochs=2, resume=True), log=print)
    assert more.epochs_done == 2
    assert load_checkpoint(second)[1]["init"]["path"] == str(first.resolve())


def test_init_leaves_a_wire_code_behind(gradient_data, tmp_path):
    first = tmp_path / "first.pt"
    train(config(gradient_data, first), log=lambda _: None)
    model, meta = load_checkpoint(first)
    wired = type(model)(model.n_devices, model.preset, **{**model.hparams, "wire_dims": 3})
    wired.load_state_dict(model.state_dict(), strict=False)
    save_checkpoint(tmp_path / "wired.pt", wired, **meta)
    result = train(config(gradient_data, tmp_path / "again.pt", init=tmp_path / "wired.pt"))
    assert result.epochs_done == 1


def test_init_refuses_another_model(gradient_data, tmp_path):
    first = tmp_path / "first.pt"
    train(config(gradient_data, first), log=lambda _: None)
    other = {**TINY_EPIC, "d_model": 16}
    with pytest.raises(ConfigError, match="hparams") as caught:
        train(config(gradient_data, tmp_path / "x.pt", init=first, hparams=other))
    assert caught.value.option == "--init"
    not_a_checkpoint = tmp_path / "notes.txt"
    not_a_checkpoint.write_text("hello")
    with pytest.raises(DataError):
        train(config(gradient_data, tmp_path / "x.pt", init=not_a_checkpoint))


def test_init_warns_when_the_validation_split_may_hold_its_training_maps(gradient_data, tmp_path):
    first = tmp_path / "first.pt"
    train(config(gradient_data, first, seed=3), log=lambda _: None)
    lines: list[str] = []
    train(config(gradient_data, tmp_path / "x.pt", init=first), log=lines.append)
    assert any(line.startswith("warning:") and "seed" in line for line in lines)


def test_cli_init_and_ssim_weight_errors_are_one_line(cli, gradient_data, tmp_path):
    base = ["train", "--model", "epic", "--out", str(tmp_path / "m.pt"), "--epochs", "1"]
    base += ["--threads", "1", "--data", str(gradient_data)]
    assert_one_line_error(cli(*base, "--init", str(tmp_path / "none.pt")), "--init")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint")
    assert_one_line_error(cli(*base, "--init", str(notes)), "notes.txt")
    assert_one_line_error(cli(*base, "--ssim-weight", "-1"), "--ssim-weight")
    assert not (tmp_path / "m.pt").exists()
