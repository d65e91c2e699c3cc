"""Fixtures for the training and evaluation tests: one thread, tiny data, a tiny EPIC-Net."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

# EPIC-Net (the registry's) cut down to ~15 k parameters: a batch takes a fraction of a second.
TINY_EPIC = {
    "enc_channels": [4, 4, 4, 4],
    "time_stride": 8,
    "token_grid": [2, 1],
    "d_model": 8,
    "heads": 2,
    "fusion_layers": 1,
    "dec_channels": [8, 8, 8, 8, 8],
    "pos_dim": 4,
    "pos_grid": 5,
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These tests share two cores with longer jobs: take one, give it back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_folder(root: Path, n: int, seed: int = 0) -> Path:
    """An OpenFWI-layout folder of ``n`` samples: random "seismic data" and velocity maps
    that rise with depth plus a per-sample offset, so a model can learn the depth profile
    (and the loss can fall) in a few steps."""
    rng = np.random.default_rng(seed)
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "model").mkdir(parents=True, exist_ok=True)
    np.save(root / "data/data1.npy", rng.standard_normal((n, 5, 1000, 70)).astype(np.float32))
    depth = np.linspace(1800.0, 4200.0, 70)[None, None, :, None]
    offset = rng.uniform(-200.0, 200.0, (n, 1, 1, 1))
    maps = np.repeat(depth + offset, 70, axis=3).astype(np.float32)
    np.save(root / "model/model1.npy", maps)
    return root


@pytest.fixture(scope="session")
def folder_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, int], Path]:
    def make(name: str, n: int) -> Path:
        return write_folder(tmp_path_factory.mktemp("lab") / name, n, seed=len(name) + n)

    return make


@pytest.fixture(scope="session")
def gradient_data(folder_factory: Callable[[str, int], Path]) -> Path:
    """Twelve samples: eleven to train, one to validate at the default 10 %."""
    return folder_factory("gradient", 12)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``epic ARGS`` in this process (no second torch import): exit code, out, err."""
    from epic.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def assert_one_line_error(result: tuple[int, str, str], *fragments: str) -> None:
    code, _, err = result
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epic: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
