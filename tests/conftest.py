"""Test-wide set-up: a fixed thread count, and one small simulated dataset to share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Real servers for every room's tests: `embedded_broker`, `mosquitto_factory`, `postgres_url`
# (tests/support/).
pytest_plugins = [
    "tests.support.brokers",
    "tests.support.mosquitto",
    "tests.support.postgres",
]

# Two cores on CI: use both, and say so rather than inherit whatever torch guesses.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five flatfault-a samples, three to a file (so two file pairs), seed 3."""
    from epic.shared.data.simulate import simulate_dataset

    out = tmp_path_factory.mktemp("tiny") / "flatfault"
    simulate_dataset("flatfault-a", 5, out, seed=3, per_file=3, progress=False)
    return out
