"""The forward model against analytic travel times, and against plain deepwave."""

import deepwave
import numpy as np
import pytest
import torch

from epic.shared.geometry import CONTRACT
from epic.shared.physics.families import generate_batch
from epic.shared.physics.forward import ForwardModel, simulate_shots, source_wavelet

DT = CONTRACT.dt_s


def analytic_trace(distance_m: float, velocity: float) -> np.ndarray:
    """2-D free-space Green's function (H(t - r/c) / sqrt(t^2 - r^2/c^2)), integrated over
    each time step, convolved with the source wavelet."""
    t = np.arange(CONTRACT.nt + 1) * DT
    a = distance_m / velocity
    green = np.diff(np.arccosh(np.maximum(t, a) / a))
    return np.convolve(source_wavelet().double().numpy(), green)[: CONTRACT.nt]


def peak_ms(trace: np.ndarray) -> float:
    return float(np.abs(trace).argmax()) * DT * 1000


@pytest.fixture(scope="module")
def homogeneous() -> np.ndarray:
    return simulate_shots(np.full((1, 70, 70), 2000.0, np.float32))[0].numpy()


def test_direct_wave_arrives_at_distance_over_velocity(homogeneous):
    # Shot 0 (source at column 0), receiver at column 40: 400 m away at 2000 m/s.
    trace = homogeneous[0, :, 40]
    onset_ms = (400.0 / 2000.0 + CONTRACT.peak_time_s) * 1000  # 300 ms
    expected = analytic_trace(400.0, 2000.0)
    # In 2-D the wavelet's peak trails the onset by a few ms (the Green's function's tail).
    assert abs(peak_ms(trace) - peak_ms(expected)) <= 3.0
    assert onset_ms <= peak_ms(trace) <= onset_ms + 10.0
    similarity = abs(trace @ expected) / np.linalg.norm(trace) / np.linalg.norm(expected)
    assert similarity > 0.99


def test_direct_wave_moves_out_linearly(homogeneous):
    # Shot 2 sits at column 34: arrivals 100 m apart differ by 50 ms at 2000 m/s.
    near, far = homogeneous[2, :, 44], homogeneous[2, :, 54]
    assert abs((peak_ms(far) - peak_ms(near)) - 50.0) <= 2.0


@pytest.mark.parametrize("interface_row", [30, 40])
def test_reflection_arrives_at_the_two_way_time(homogeneous, interface_row):
    layered = np.full((1, 70, 70), 2000.0, np.float32)
    layered[:, interface_row:, :] = 3000.0
    data = simulate_shots(layered)[0].numpy()
    # Subtracting the homogeneous run leaves the reflection alone. Shot 2 (column 34),
    # receiver at column 44: 100 m offset.
    reflected = (data - homogeneous)[2, :, 44]
    # The velocity steps between rows r-1 and r: the interface sits half a cell above row r.
    depth_below_source = (interface_row - 0.5) * 10.0 - 10.0
    path = 2 * np.hypot(depth_below_source, 50.0)
    two_way_ms = (path / 2000.0 + CONTRACT.peak_time_s) * 1000
    assert abs(peak_ms(reflected) - peak_ms(analytic_trace(path, 2000.0))) <= 3.0
    assert two_way_ms <= peak_ms(reflected) <= two_way_ms + 10.0
    # And nothing arrives before it: the wavelet rises about 60 ms before its peak.
    early = np.abs(reflected[: int(two_way_ms - 80)]).max()
    assert early < 0.05 * np.abs(reflected).max()


def plain_deepwave(velocity: np.ndarray) -> np.ndarray:
    """What someone running deepwave with the contract geometry writes, in its defaults."""
    v = torch.from_numpy(velocity[0]).repeat(5, 1, 1)
    src = torch.tensor([[[1, c]] for c in (0, 17, 34, 52, 69)])
    rec = torch.stack([torch.tensor([[1, x] for x in range(70)])] * 5)
    wavelet = deepwave.wavelets.ricker(15.0, 1000, 0.001, 0.1).repeat(5, 1, 1)
    out = deepwave.scalar(
        v,
        10.0,
        0.001,
        source_amplitudes=wavelet,
        source_locations=src,
        receiver_locations=rec,
        accuracy=4,
        pml_width=20,
        pml_freq=15.0,
    )
    return out.receiver_amplitudes.transpose(1, 2).numpy()  # [shot, time, receiver]


@pytest.mark.parametrize("family", ["flatvel-a", "curvefault-b", "style-a"])
def test_plain_deepwave_reproduces_our_data_within_one_percent(family):
    maps = generate_batch(family, seed=11, start=0, count=3)
    ours = simulate_shots(maps).numpy()  # batched, as the simulator runs
    for i in (0, 2):
        theirs = plain_deepwave(maps[i])
        error = np.linalg.norm(ours[i] - theirs) / np.linalg.norm(theirs)
        assert error < 0.01, f"{family} sample {i}: {error:.4f}"


def test_module_and_function_agree():
    maps = generate_batch("flatvel-b", seed=1, start=0, count=1)
    assert torch.equal(ForwardModel()(torch.from_numpy(maps)), simulate_shots(maps))


@pytest.mark.parametrize(
    ("velocity", "message"),
    [
        (np.full((1, 60, 70), 2000.0, np.float32), "expected"),
        (np.full((1, 70, 70), np.nan, np.float32), "NaN"),
        (np.zeros((1, 70, 70), np.float32), "must be > 0"),
    ],
)
def test_bad_velocity_is_refused(velocity, message):
    with pytest.raises(ValueError, match=message):
        simulate_shots(velocity)
