"""Training under torchrun: two CPU processes (gloo) train what one process does at the same
global batch, because each takes its slice of every global batch, of every random draw and
of the BatchNorm statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from epic.lab.train import augment
from epic.lab.train.distributed import (
    GlooSyncBatchNorm,
    Ranks,
    local_batch,
    shard_order,
    sync_batchnorm,
)
from epic.shared.errors import ConfigError
from epic.shared.models.checkpoint import load_checkpoint
from tests.lab.conftest import TINY_EPIC, write_folder


def test_each_process_takes_its_slice_of_every_global_batch():
    order = [9, 3, 7, 1, 0, 8, 2, 6, 4, 5]
    assert shard_order(order, 4, 2, Ranks(0, 2)) == [9, 3, 0, 8]
    assert shard_order(order, 4, 2, Ranks(1, 2)) == [7, 1, 2, 6]
    assert shard_order(order, 4, 2, Ranks(0, 1)) == order


def test_a_global_batch_that_does_not_split_is_refused():
    assert local_batch(32, Ranks(1, 2)) == 16
    with pytest.raises(ConfigError, match="multiple of 3") as caught:
        local_batch(32, Ranks(0, 3))
    assert caught.value.option == "--batch-size"


def test_ranks_come_from_torchruns_environment(monkeypatch):
    assert Ranks.from_env() == Ranks(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Ranks.from_env() == Ranks(1, 2, 1) and not Ranks.from_env().main
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2 of WORLD_SIZE=2"):
        Ranks.from_env()


def _seeded() -> torch.Generator:
    return torch.Generator().manual_seed(7)


def test_augmentation_slices_add_up_to_one_processs_draws():
    x = torch.zeros(6, 5, 8, 70)
    v = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 1, 4, 70)
    whole_noise = augment.add_noise(x, 0.05, _seeded())
    whole_mask = augment.dropout_mask(6, 5, 0.5, _seeded())
    whole_flip = augment.mirror(x + v[:, :1, :1, :1], v, _seeded())[1]
    noise, mask, flip = [], [], []
    for rank in range(2):
        shard = (rank, 2)
        noise.append(augment.add_noise(x[:3], 0.05, _seeded(), shard))
        mask.append(augment.dropout_mask(3, 5, 0.5, _seeded(), shard))
        mine = v[rank * 3 : rank * 3 + 3]
        flip.append(augment.mirror(x[:3] + mine[:, :1, :1, :1], mine, _seeded(), shard)[1])
    assert torch.equal(torch.cat(noise), whole_noise)
    assert torch.equal(torch.cat(mask), whole_mask)
    assert torch.equal(torch.cat(flip), whole_flip)
    assert not whole_mask.all()  # the draw did drop devices: the test can fail


def _batchnorm_worker(rank: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 4)
    net = sync_batchnorm(nn.Sequential(nn.BatchNorm2d(3)), torch.device("cpu"))
    assert isinstance(net[0], GlooSyncBatchNorm)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    mine = x[rank * 4 : rank * 4 + 4].clone().requires_grad_(True)
    y = net(mine)
    (y * torch.arange(1.0, 5.0).view(1, 1, 1, 4)).sum().backward()
    dist.all_reduce(net[0].weight.grad)  # DDP would; here by hand
    torch.save(
        {"y": y.detach(), "dx": mine.grad, "dw": net[0].weight.grad, "bn": net[0].state_dict()},
        f"{out}.{rank}",
    )
    dist.barrier()  # as Ranks.leave: neither tears gloo down under the other's last all-reduce
    dist.destroy_process_group()


def test_gloo_sync_batchnorm_matches_batchnorm_over_the_global_batch(tmp_path):
    out = str(tmp_path / "bn")
    mp.spawn(_batchnorm_worker, args=(str(tmp_path / "store"), out), nprocs=2)
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 4).requires_grad_(True)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    y = bn(x)
    (y * torch.arange(1.0, 5.0).view(1, 1, 1, 4)).sum().backward()
    parts = [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(2)]
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach())
    torch.testing.assert_close(torch.cat([p["dx"] for p in parts]), x.grad)
    torch.testing.assert_close(parts[0]["dw"], bn.weight.grad)
    for key, value in bn.state_dict().items():
        torch.testing.assert_close(parts[1]["bn"][key], value)


def _train_args(data: Path, out: Path) -> list[str]:
    args = [
        "train",
        "--model",
        "epic",
        "--data",
        str(data),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--lr",
        "0.003",
        "--mirror",
        "--device-dropout",
        "0.5",
        "--threads",
        "1",
        "--no-progress",
        "--no-amp",  # float32: bfloat16 rounds differently for a batch of 2 and one of 4
    ]
    for key, value in TINY_EPIC.items():
        args += ["--hparam", f"{key}={json.dumps(value)}"]
    return args


def _run(*command: str) -> subprocess.CompletedProcess:
    # torchrun's rendezvous must not meet another test's: --standalone picks a free port.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_two_processes_train_what_one_process_does(tmp_path):
    data = write_folder(tmp_path / "data", 20, seed=3)  # 18 to train: 4 steps of 4, 2 left over
    one = _run(sys.executable, "-m", "epic", *_train_args(data, tmp_path / "one.pt"))
    assert one.returncode == 0, one.stderr
    two = _run(
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "epic",
        *_train_args(data, tmp_path / "two.pt"),
    )
    assert two.returncode == 0, two.stderr
    assert "2 processes, 2 samples each a step" in two.stdout
    assert two.stdout.count("best epoch") == 1  # process 0 speaks for the run
    a = torch.load(tmp_path / "one.last.pt", weights_only=True)
    b = torch.load(tmp_path / "two.last.pt", weights_only=True)
    for key in ("train_loss", "val_loss", "val_ssim", "lr"):
        got = [h[key] for h in b["history"]]
        want = [h[key] for h in a["history"]]
        assert got == pytest.approx(want, rel=1e-4), key
    assert a["history"][-1]["train_loss"] < a["history"][0]["train_loss"]  # it did train
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-3, atol=1e-4)
    model, meta = load_checkpoint(tmp_path / "two.pt")  # loads into the plain model
    assert not any(isinstance(m, GlooSyncBatchNorm) for m in model.modules())
    assert meta["epochs"] == a["best"]["epoch"]
