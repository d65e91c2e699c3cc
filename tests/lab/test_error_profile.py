import torch

from epic.lab.eval.error_profile import blur, profile


def _layers() -> torch.Tensor:
    """Two flat-layered maps, 70 x 70, 1,500 to 4,000 m/s."""
    v = torch.full((2, 1, 70, 70), 1500.0)
    v[:, :, 20:] = 2500.0
    v[:, :, 45:] = 4000.0
    v[1, :, 30:] += 200.0
    return v


def test_a_perfect_map_has_no_error_and_blur_costs_ssim():
    true = _layers()
    f = profile(true.clone(), true, rows=7)
    assert f["ssim"] > 0.999 and f["mae"] == 0.0
    assert f["mae_by_depth"] == [0.0] * 7 and f["mae_interfaces"] == 0.0
    # Two jumps in the first map, three in the second, of 69 row pairs.
    assert abs(f["interface_share"] - 2.5 / 69) < 1e-6
    blurred = list(f["truth_blurred_ssim"].values())
    assert blurred == sorted(blurred, reverse=True) and blurred[-1] < 0.95


def test_error_is_placed_by_depth_and_at_interfaces():
    true = _layers()
    pred = true.clone()
    pred[:, :, 63:] += 100.0  # the deepest band only
    f = profile(pred, true, rows=10)
    assert f["mae_by_depth"][:9] == [0.0] * 9 and f["mae_by_depth"][9] == 100.0
    shifted = torch.roll(true, 1, dims=2)  # every interface one row deeper
    g = profile(shifted, true, rows=10)
    assert g["mae_interfaces"] > 100 * g["mae_elsewhere"]


def test_blur_keeps_a_constant_map():
    v = torch.full((1, 1, 20, 30), 3000.0)
    assert torch.allclose(blur(v, 1.5), v)
