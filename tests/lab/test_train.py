"""Training: the loss falls, checkpoints appear and load, resume is exact, the split holds
out the same samples every time, augmentation does what it says, the CLI fails in one line."""

from __future__ import annotations

import json

import pytest
import torch

from epic.lab.train import augment
from epic.lab.train.splits import open_folders, split_folders
from epic.lab.train.state import last_path
from epic.lab.train.trainer import TrainConfig, train
from epic.shared.errors import ConfigError
from epic.shared.geometry import CONTRACT
from epic.shared.models.checkpoint import load_checkpoint
from epic.shared.models.registry import MODEL_NAMES
from tests.lab.conftest import TINY_EPIC, assert_one_line_error
from tests.test_cli import run


def config(data, out, **kwargs) -> TrainConfig:
    settings = {
        "epochs": 3,
        "batch_size": 4,
        "lr": 1e-2,
        "hparams": TINY_EPIC,
        "progress": False,
        **kwargs,
    }
    return TrainConfig("epic", [data], out, **settings)


def test_training_lowers_the_loss_and_writes_loadable_checkpoints(gradient_data, tmp_path):
    lines: list[str] = []
    out = tmp_path / "run" / "epic.pt"
    result = train(
        config(gradient_data, out, max_minutes=30.0, command="epic train ..."), log=lines.append
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.6 * losses[0], losses
    assert result.epochs_done == 3 and not result.stopped_early
    assert out.is_file() and last_path(out) == tmp_path / "run" / "epic.last.pt"
    assert last_path(out).is_file()
    model, meta = load_checkpoint(out)
    assert model.name == "epic" and model.n_devices == 5 and not model.training
    assert meta["command"] == "epic train ..." and meta["seed"] == 0
    assert meta["data"] == [str(gradient_data.resolve())] and meta["max_minutes"] == 30.0
    assert meta["epochs"] == result.best["epoch"] and meta["train_seconds"] > 0
    assert set(meta["val"]) >= {"ssim", "mae", "rmse"} and meta["val"]["samples"] == 1
    assert meta["val"]["ssim"] == max(h["val_ssim"] for h in result.history)
    assert meta["train_samples"] == 11
    # one summary line per epoch, with the figures a person looks at
    summaries = [line for line in lines if line.startswith("epoch ")]
    assert len(summaries) == 3
    assert all(k in summaries[0] for k in ("train ", "val ", "SSIM", "MAE", "m/s", " s"))


def test_resume_continues_exactly_where_it_stopped(gradient_data, tmp_path):
    # every source of randomness on: shuffling, noise, mirror, device dropout
    def cfg(out, **kwargs):
        return config(gradient_data, out, mirror=True, device_dropout=0.5, **kwargs)

    straight = train(cfg(tmp_path / "a.pt"), log=lambda _: None)
    first = train(cfg(tmp_path / "b.pt", max_minutes=1e-6), log=lambda _: None)
    assert first.stopped_early and first.epochs_done == 1
    lines: list[str] = []
    resumed = train(cfg(tmp_path / "b.pt", resume=True), log=lines.append)
    assert any("after epoch 1" in line for line in lines)
    assert resumed.epochs_done == 3 and len(resumed.history) == 3
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in straight.history]
    a = torch.load(tmp_path / "a.last.pt", weights_only=True)
    b = torch.load(tmp_path / "b.last.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_resume_refuses_a_different_run(gradient_data, tmp_path):
    train(config(gradient_data, tmp_path / "m.pt", epochs=1), log=lambda _: None)
    with pytest.raises(ConfigError, match="seed"):
        train(config(gradient_data, tmp_path / "m.pt", seed=1, resume=True), log=lambda _: None)
    with pytest.raises(ConfigError, match="hparams"):
        other = {**TINY_EPIC, "d_model": 16}
        train(
            config(gradient_data, tmp_path / "m.pt", hparams=other, resume=True), log=lambda _: None
        )


def test_validation_split_is_per_folder_deterministic_and_disjoint(folder_factory):
    folders = open_folders([folder_factory("a", 20), folder_factory("b", 3)])
    split = split_folders(folders, 0.1, seed=4)
    again = split_folders(folders, 0.1, seed=4)
    other = split_folders(folders, 0.1, seed=5)
    assert split.val.indices == again.val.indices and split.train.indices == again.train.indices
    assert split.val.indices != other.val.indices
    assert split.val_per_folder == [2, 1]  # every folder validates, at least one sample
    assert not set(split.val.indices) & set(split.train.indices)
    assert sorted(split.val.indices + split.train.indices) == list(range(23))
    with pytest.raises(ConfigError):
        split_folders(folders, 0.0, seed=0)


def test_mirror_flips_map_receivers_and_shots_together():
    assert augment.mirror_offset(CONTRACT) == 1  # 34 -> 35: the middle shot is a cell off
    data = torch.randn(16, 5, 10, 70)
    velocity = torch.randn(16, 1, 70, 70)
    flipped_data, flipped_vel = augment.mirror(data, velocity, torch.Generator().manual_seed(0))
    flipped = [i for i in range(16) if not torch.equal(flipped_vel[i], velocity[i])]
    assert 0 < len(flipped) < 16
    for i in range(16):
        if i in flipped:
            assert torch.equal(flipped_vel[i], velocity[i].flip(-1))
            assert torch.equal(flipped_data[i, 0], data[i, 4].flip(-1))  # shot order reversed
        else:
            assert torch.equal(flipped_data[i], data[i])


def test_mirror_matches_the_forward_model_of_the_mirrored_map():
    """What mirroring claims, checked against the physics: the flipped data of a map is the
    data of the flipped map for four of the five shots, exactly; the middle one differs."""
    from epic.shared.physics.families import generate_batch
    from epic.shared.physics.forward import simulate_shots

    v = torch.as_tensor(generate_batch("curvefault-a", 1, 0, 1))
    d = simulate_shots(torch.cat([v, v.flip(-1)]))
    data, maps = augment.mirror(
        d[:1].repeat(8, 1, 1, 1), v.repeat(8, 1, 1, 1), torch.Generator().manual_seed(0)
    )
    i = next(i for i in range(8) if torch.equal(maps[i], v[0].flip(-1)))
    for shot in (0, 1, 3, 4):
        torch.testing.assert_close(data[i, shot], d[1, shot])
    assert (data[i, 2] - d[1, 2]).norm() > 0.1 * d[1, 2].norm()  # source 35, not 34


def test_noise_level_is_random_per_sample_and_bounded():
    x = torch.zeros(64, 5, 10, 7)
    noisy = augment.add_noise(x, 0.05, torch.Generator().manual_seed(0))
    stds = noisy.flatten(1).std(dim=1)
    assert stds.max() < 0.06 and stds.min() < 0.02 and stds.max() > 0.03
    assert torch.equal(augment.add_noise(x, 0.0, torch.Generator()), x)


def test_device_dropout_masks_keep_at_least_one_device():
    gen = torch.Generator().manual_seed(0)
    present = augment.dropout_mask(2000, 5, 0.5, gen)
    missing = (~present).sum(dim=1)
    assert missing.max() <= 4 and present.any(dim=1).all()
    assert 0.4 < (missing > 0).float().mean() < 0.6  # about p of the samples lose devices
    assert set(missing[missing > 0].tolist()) == {1, 2, 3, 4}
    assert augment.dropout_mask(8, 5, 0.0, gen).all()
    assert augment.dropout_mask(8, 1, 1.0, gen).all()  # one device: nothing to drop
    assert ((~augment.drop_exactly(50, 5, 3, gen)).sum(dim=1) == 3).all()
    with pytest.raises(ValueError):
        augment.drop_exactly(5, 5, 5, gen)


def test_device_dropout_defaults_to_half_for_epic_only(tmp_path):
    assert TrainConfig("epic", [tmp_path], tmp_path / "m.pt").device_dropout == 0.5
    assert TrainConfig("inversionnet", [tmp_path], tmp_path / "m.pt").device_dropout == 0.0
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig("epic", [tmp_path], tmp_path / "m.pt", lr=0.0)


def test_autocast_follows_amp_and_the_hardware(tmp_path, monkeypatch):
    from epic.lab.train import config as config_module

    cfg = TrainConfig("epic", [tmp_path], tmp_path / "m.pt")
    assert config_module.train_autocast(cfg, torch.device("cuda"))
    for native in (True, False):
        monkeypatch.setattr(config_module, "_cpu_has_bf16", lambda native=native: native)
        assert config_module.train_autocast(cfg, torch.device("cpu")) is native
    cfg.amp = False
    assert not config_module.train_autocast(cfg, torch.device("cuda"))
    assert not config_module.train_autocast(cfg, torch.device("cpu"))


def test_cli_model_choices_are_the_registry():
    from epic.commands.train import ModelName

    assert tuple(m.value for m in ModelName) == MODEL_NAMES


def _hparam_args() -> list[str]:
    args = []
    for key, value in TINY_EPIC.items():
        args += ["--hparam", f"{key}={json.dumps(value)}"]
    return args


def test_cli_train_then_resume(folder_factory, tmp_path):
    a, b = folder_factory("cli-a", 5), folder_factory("cli-b", 5)
    out = tmp_path / "cli.pt"
    common = [
        "train",
        "--model",
        "epic",
        "--out",
        str(out),
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--no-progress",
        *_hparam_args(),
        "--data",
        str(a),
        str(b),
    ]
    first = run(*common, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert "8 training / 2 validation samples" in first.stdout
    assert "epoch 1/1" in first.stdout and f"-> {out}" in first.stdout
    second = run(*common, "--epochs", "2", "--resume")
    assert second.returncode == 0, second.stderr
    assert "after epoch 1" in second.stdout and "epoch 2/2" in second.stdout
    assert "epoch 1/" not in second.stdout
    _, meta = load_checkpoint(out)
    assert meta["command"].startswith("epic train --model epic")


def test_cli_train_bad_arguments_fail_in_one_line(cli, gradient_data, tmp_path):
    base = [
        "train",
        "--out",
        str(tmp_path / "m.pt"),
        "--epochs",
        "1",
        "--threads",
        "1",
        "--data",
        str(gradient_data),
    ]
    assert_one_line_error(cli(*base, "--model", "bogus"), "--model")
    assert_one_line_error(cli(*base, "--model", "epic", "--hparam", "nope=1"), "--hparam", "nope")
    assert_one_line_error(cli(*base, "--model", "epic", "--hparam", "heads"), "KEY=VALUE")
    assert_one_line_error(cli(*base, "--model", "epic", "--resume"), "no training state")
    assert_one_line_error(cli(*base, "--model", "epic", "--val-fraction", "1"), "--val-fraction")
    assert_one_line_error(cli(*base, "--model", "epic", "--device", "tpu"), "--device")
    missing = ["train", "--out", str(tmp_path / "m.pt"), "--epochs", "1", "--model", "epic"]
    assert_one_line_error(cli(*missing, "--data", str(tmp_path / "none")), "no such folder")
    assert_one_line_error(cli(*missing), "--data")
    assert not (tmp_path / "m.pt").exists()


def test_time_schedule_anneals_by_the_clock():
    from epic.lab.train.trainer import _lr_factor

    spent = [0.0]
    factor = _lr_factor(1000, 10, lambda: spent[0])
    assert factor(5) == pytest.approx(0.6)  # warm-up is by steps either way
    assert factor(10) == pytest.approx(1.0)
    spent[0] = 0.5
    assert factor(11) == pytest.approx(0.01 + 0.99 * 0.5)  # half the budget: half the cosine
    spent[0] = 3.0
    assert factor(12) == pytest.approx(0.01)  # over budget: the floor, never below
    steps_only = _lr_factor(1000, 10)
    assert steps_only(12) > 0.99


def test_time_schedule_needs_a_budget(tmp_path):
    with pytest.raises(ConfigError, match="max-minutes") as caught:
        TrainConfig(model="epic", data=[tmp_path], out=tmp_path / "m.pt", schedule="time")
    assert caught.value.option == "--schedule"


def test_a_wire_code_is_fitted_not_trained(gradient_data, tmp_path):
    from epic.lab.train.config import build

    cfg = TrainConfig("epic", [gradient_data], tmp_path / "x.pt", hparams={"wire_dims": 4})
    with pytest.raises(ConfigError, match="epic compress"):
        build(cfg)
