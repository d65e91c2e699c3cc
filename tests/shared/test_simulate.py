"""Simulate, read back: layout, shapes, dtypes, determinism."""

import json

import numpy as np
import pytest

from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.data.simulate import simulate_dataset
from epic.shared.errors import DataError
from epic.shared.physics.families import FAMILIES, generate_batch
from epic.shared.physics.forward import simulate_shots


def test_writes_openfwi_vel_layout(tiny_dataset):
    assert sorted(p.name for p in (tiny_dataset / "data").iterdir()) == ["data1.npy", "data2.npy"]
    assert sorted(p.name for p in (tiny_dataset / "model").iterdir()) == [
        "model1.npy",
        "model2.npy",
    ]
    d1, m2 = np.load(tiny_dataset / "data/data1.npy"), np.load(tiny_dataset / "model/model2.npy")
    assert d1.shape == (3, 5, 1000, 70) and d1.dtype == np.float32
    assert m2.shape == (2, 1, 70, 70) and m2.dtype == np.float32
    meta = json.loads((tiny_dataset / "epic-dataset.json").read_text())
    assert meta["family"] == "flatfault-a" and meta["seed"] == 3 and meta["samples"] == 5


def test_reads_back_what_the_forward_model_makes(tiny_dataset):
    dataset = OpenFWIDataset(tiny_dataset)
    assert len(dataset) == 5
    data, model = dataset.raw(4)  # second file, second sample
    expected_map = generate_batch("flatfault-a", seed=3, start=4, count=1)
    np.testing.assert_array_equal(model, expected_map[0])
    np.testing.assert_allclose(data, simulate_shots(expected_map)[0].numpy(), rtol=0, atol=1e-5)
    assert model.min() >= 1500 and model.max() <= 4500


def test_same_seed_same_bytes_other_seed_other_data(tiny_dataset, tmp_path):
    simulate_dataset(
        "flatfault-a", 5, tmp_path / "again", seed=3, per_file=5, batch=2, progress=False
    )
    again = np.load(tmp_path / "again/data/data1.npy")
    first = np.concatenate([np.load(tiny_dataset / f"data/data{k}.npy") for k in (1, 2)])
    np.testing.assert_array_equal(again, first)  # batching and file split change nothing
    simulate_dataset("flatfault-a", 2, tmp_path / "other", seed=4, progress=False)
    assert not np.array_equal(np.load(tmp_path / "other/data/data1.npy"), first[:2])


def test_refuses_to_overwrite_unless_told(tiny_dataset, tmp_path):
    out = tmp_path / "d"
    simulate_dataset("style-a", 1, out, progress=False)
    with pytest.raises(DataError, match="already holds"):
        simulate_dataset("style-a", 1, out, progress=False)
    simulate_dataset("style-b", 2, out, overwrite=True, progress=False)
    assert len(OpenFWIDataset(out)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"family": "salt"}, "unknown family"),
        ({"samples": 0}, "samples=0"),
        ({"per_file": 0}, "per_file=0"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"family": "flatvel-a", "samples": 1, "out": tmp_path / "x", "progress": False} | kwargs
    with pytest.raises(ValueError, match=message):
        simulate_dataset(**args)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_simulates(tmp_path, family):
    result = simulate_dataset(family, 1, tmp_path / family, seed=2, progress=False)
    data, model = OpenFWIDataset(tmp_path / family).raw(0)
    assert result.samples == 1 and data.shape == (5, 1000, 70) and np.isfinite(data).all()
    assert np.abs(data).max() > 1.0  # the direct wave is there
    assert 1500 <= model.min() <= model.max() <= 4500
