"""The batched PyTorch propagator against deepwave, the reference, on every family."""

import deepwave
import numpy as np
import pytest
import torch

from epic.shared.geometry import CONTRACT, Geometry
from epic.shared.physics.engine import resolve_engine, shot_simulator
from epic.shared.physics.families import FAMILIES, generate_batch
from epic.shared.physics.forward import simulate_shots, source_wavelet
from epic.shared.physics.propagator import (
    BatchedPropagator,
    downsample,
    ricker,
    step_ratio,
    upsample,
)


@pytest.fixture(scope="module")
def every_family() -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    names = list(FAMILIES)
    maps = np.concatenate([generate_batch(name, 3, 0, 1) for name in names])
    ours = BatchedPropagator()(torch.from_numpy(maps)).numpy()
    return names, maps, ours, simulate_shots(maps).numpy()


def test_agrees_with_deepwave_within_one_percent_on_every_family(every_family):
    names, _, ours, reference = every_family
    assert ours.shape == reference.shape == (len(names), *CONTRACT.data_shape)
    for name, a, b in zip(names, ours, reference, strict=True):
        error = np.linalg.norm(a - b) / np.linalg.norm(b)
        # Same discretization: float32 rounding apart (about 1e-5 measured).
        assert error < 0.01, f"{name}: {error:.2e} relative L2 against deepwave"


def test_each_map_is_independent_of_its_batch(every_family):
    _, maps, ours, _ = every_family
    alone = BatchedPropagator()(torch.from_numpy(maps[2:3])).numpy()
    np.testing.assert_allclose(alone[0], ours[2], rtol=0, atol=1e-6 * np.abs(ours[2]).max())


def test_wavelet_and_resampling_are_deepwave_s():
    np.testing.assert_allclose(ricker().numpy(), source_wavelet().numpy(), atol=1e-6)
    signal = torch.randn(3, 1000, dtype=torch.float64)
    np.testing.assert_allclose(
        upsample(signal, 2), deepwave.discretisation.upsample(signal, 2), atol=1e-12
    )
    long = torch.randn(3, 2000, dtype=torch.float64)
    np.testing.assert_allclose(
        downsample(long, 2), deepwave.discretisation.downsample(long, 2), atol=1e-12
    )


def test_internal_step_follows_the_cfl_rule():
    assert step_ratio(CONTRACT) == 2  # Courant 0.64 at 1 ms and 4,500 m/s, above 0.6
    assert step_ratio(CONTRACT, max_vel=3000.0) == 1


def test_refuses_wrong_shapes_and_geometries():
    with pytest.raises(ValueError, match="expected"):
        BatchedPropagator()(torch.full((1, 60, 70), 2000.0))
    with pytest.raises(ValueError, match="accuracy=2"):
        BatchedPropagator(Geometry(accuracy=2))


def test_engine_choice():
    assert resolve_engine("auto") == "deepwave"  # installed here: the reference wins
    with pytest.raises(ValueError, match="choose from"):
        resolve_engine("fdtd")
    simulate = shot_simulator("torch")
    data = simulate(np.full((1, 1, 70, 70), 2500.0, np.float32))
    assert data.shape == (1, *CONTRACT.data_shape) and data.device.type == "cpu"


def test_auto_falls_back_to_torch_where_deepwave_cannot_be_imported():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = "from shared.physics.engine import resolve_engine; print(resolve_engine('auto'))"
    env = {"PYTHONPATH": f"{root / 'tests' / 'gpu_like'}:{root}", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "torch", out.stderr
