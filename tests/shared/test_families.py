"""Each family has the character its name says; B is harder than A."""

import numpy as np
import pytest

from epic.shared.physics.families import FAMILIES, generate, generate_batch

N = 24


def batch(family: str) -> np.ndarray:
    return generate_batch(family, seed=5, start=0, count=N)[:, 0]


def vertical_jumps(m: np.ndarray) -> np.ndarray:
    """Number of velocity steps down each column (of one map or of each of a batch)."""
    return (np.abs(np.diff(m, axis=-2)) > 1.0).sum(axis=-2)


def roughness(maps: np.ndarray) -> float:
    """Mean absolute velocity change between neighbouring cells, m/s."""
    return float(np.mean(np.abs(np.diff(maps, axis=1))) + np.mean(np.abs(np.diff(maps, axis=2))))


@pytest.mark.parametrize("family", list(FAMILIES))
def test_maps_are_float32_in_range_and_deterministic(family):
    maps = generate_batch(family, seed=1, start=0, count=4)
    assert maps.shape == (4, 1, 70, 70) and maps.dtype == np.float32
    assert maps.min() >= 1500.0 and maps.max() <= 4500.0
    np.testing.assert_array_equal(maps, generate_batch(family, seed=1, start=0, count=4))
    # Sample k does not depend on the batch it was made in.
    np.testing.assert_array_equal(maps[2:], generate_batch(family, seed=1, start=2, count=2))
    assert not np.array_equal(maps, generate_batch(family, seed=2, start=0, count=4))


@pytest.mark.parametrize("family", ["flatvel-a", "flatvel-b"])
def test_flat_layers_are_constant_along_each_row(family):
    for m in batch(family):
        assert np.all(m == m[:, :1])
        assert 3 <= len(np.unique(m)) <= 7


@pytest.mark.parametrize("family", ["curvevel-a", "curvevel-b"])
def test_curved_layers_bend(family):
    for m in batch(family):
        # Interfaces move up and down across the line; layers stay layers (few values).
        assert np.sum(~np.all(m == m[:, :1], axis=1)) >= 3
        assert len(np.unique(m)) <= 7
    # Bumps are tens of cells high at times: the first interface's depth range across x.
    first = [np.ptp(np.argmax(np.abs(np.diff(m, axis=0)) > 1, axis=0)) for m in batch(family)]
    assert max(first) >= 10


def test_a_velocities_rise_with_depth():
    for family in ("flatvel-a", "curvevel-a"):
        for m in batch(family):
            assert np.all(np.diff(m, axis=0) >= 0), family


@pytest.mark.parametrize("family", ["flatfault-a", "flatfault-b"])
def test_faults_cut_flat_layers_with_throw(family):
    for m in batch(family):
        rows_broken = np.sum(~np.all(m == m[:, :1], axis=1))
        assert rows_broken >= 5  # a slanted cut crosses many rows
        # Throw: somewhere a layer top sits at different depths on the two sides.
        tops = np.argmax(np.abs(np.diff(m, axis=0)) > 1, axis=0)
        assert np.ptp(tops) >= 3 or len(np.unique(vertical_jumps(m))) > 1


@pytest.mark.parametrize("family", ["style-a", "style-b"])
def test_style_maps_are_textures_not_layers(family):
    for m in batch(family):
        assert len(np.unique(m)) > 500  # continuous values
        assert not np.all(m == m[:, :1])


@pytest.mark.parametrize(
    "pair",
    [
        ("flatvel-a", "flatvel-b"),
        ("curvevel-a", "curvevel-b"),
        ("flatfault-a", "flatfault-b"),
        ("curvefault-a", "curvefault-b"),
        ("style-a", "style-b"),
    ],
)
def test_b_is_harder_than_a(pair):
    easy, hard = batch(pair[0]), batch(pair[1])
    assert roughness(hard) > 1.2 * roughness(easy)
    if not pair[0].startswith("style"):
        assert vertical_jumps(hard).mean() > vertical_jumps(easy).mean()


def test_unknown_family_is_named():
    with pytest.raises(ValueError, match="unknown family 'salt-a'"):
        generate("salt-a", np.random.default_rng(0))
