"""The encoder's anti-aliased time decimation, against sines of known frequency."""

import math

import pytest
import torch

from epic.shared.models.decimation import TimeDecimation, lowpass_taps


def _sine(hz: float, nt: int = 1000, dt: float = 1e-3) -> torch.Tensor:
    t = torch.arange(nt, dtype=torch.float64) * dt
    return torch.sin(2 * math.pi * hz * t).float().reshape(1, 1, nt, 1).repeat(1, 5, 1, 3)


def _amplitude(x: torch.Tensor) -> float:
    core = x[..., 20:-20, :]  # away from the zero padding at both ends
    return float(core.abs().amax())


def test_shape_and_unit_dc_gain():
    d = TimeDecimation(8, channels=5)
    x = torch.ones(2, 5, 1000, 14)
    y = d(x)
    assert y.shape == (2, 5, 125, 14)
    assert torch.allclose(y[..., 10:-10, :], torch.ones(()), atol=1e-5)
    assert float(lowpass_taps(8).sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("hz", "low", "high"), [(15, 0.98, 1.02), (30, 0.93, 1.0)])
def test_the_wavelets_band_passes(hz, low, high):
    assert low <= _amplitude(TimeDecimation(8, 5)(_sine(hz))) <= high


@pytest.mark.parametrize("hz", [80, 150, 400])
def test_what_would_alias_is_removed(hz):
    # Above the new Nyquist frequency (62.5 Hz) a sine would fold back into the band.
    assert _amplitude(TimeDecimation(8, 5)(_sine(hz))) < 0.01


def test_factor_one_is_the_identity():
    x = torch.randn(1, 5, 1000, 7)
    assert torch.equal(TimeDecimation(1, 5)(x), x)
    with pytest.raises(ValueError, match="factor=0"):
        lowpass_taps(0)
