"""The reader: both namings, memory mapping, and one clear error per kind of bad input."""

import numpy as np
import pytest
import torch

from epic.shared.data.normalization import Normalization
from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.errors import DataError


def write_vel(root, n=2, k=1, data=None, model=None):
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "model").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(k)
    if data is None:
        data = rng.standard_normal((n, 5, 1000, 70)).astype(np.float32)
    if model is None:
        model = rng.uniform(1500, 4500, (n, 1, 70, 70)).astype(np.float32)
    np.save(root / "data" / f"data{k}.npy", data)
    np.save(root / "model" / f"model{k}.npy", model)
    return data, model


def test_reads_vel_naming_in_natural_order(tmp_path):
    for k in (1, 2, 10):
        write_vel(tmp_path, n=1, k=k)
    dataset = OpenFWIDataset(tmp_path)
    assert [f.pair.data.name for f in dataset.summary.files] == [
        "data1.npy",
        "data2.npy",
        "data10.npy",
    ]
    np.testing.assert_array_equal(dataset.raw(2)[0], np.load(tmp_path / "data/data10.npy")[0])


def test_reads_fault_naming(tmp_path):
    rng = np.random.default_rng(0)
    seis = rng.standard_normal((3, 5, 1000, 70)).astype(np.float32)
    vel = rng.uniform(1500, 4500, (3, 1, 70, 70)).astype(np.float32)
    np.save(tmp_path / "seis2_1_0.npy", seis)
    np.save(tmp_path / "vel2_1_0.npy", vel)
    dataset = OpenFWIDataset(tmp_path)
    assert len(dataset) == 3
    data, model = dataset[1]
    assert torch.equal(data, torch.from_numpy(seis[1]))
    assert torch.equal(model, torch.from_numpy(vel[1]))


def test_several_folders_concatenate(tmp_path):
    write_vel(tmp_path / "a", n=2)
    write_vel(tmp_path / "b", n=3)
    assert len(OpenFWIDataset([tmp_path / "a", tmp_path / "b"])) == 5


def test_data_are_memory_mapped(tmp_path):
    write_vel(tmp_path, n=2)
    dataset = OpenFWIDataset(tmp_path)
    assert all(isinstance(d, np.memmap) for d, _ in dataset._arrays)


def test_normalized_items(tmp_path):
    data, model = write_vel(tmp_path, n=1)
    norm = Normalization()
    x, v = OpenFWIDataset(tmp_path, normalization=norm)[0]
    assert x.shape == (5, 1000, 70) and v.shape == (1, 70, 70)
    assert x.abs().max() <= 1.0 + 1e-6 and v.min() >= -1 and v.max() <= 1
    # Per-shot scaling: the same data at another amplitude normalizes to the same thing.
    write_vel(tmp_path / "loud", n=1, data=data * 37.0, model=model)
    x_loud, _ = OpenFWIDataset(tmp_path / "loud", normalization=norm)[0]
    torch.testing.assert_close(x_loud, x, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(norm.velocity_inverse(v).numpy(), model[0], rtol=1e-5)


def test_per_device_blocks_scale_each_block_alone():
    x = torch.randn(5, 1000, 70)
    x[..., :35] *= 100.0
    y = Normalization().data(x, blocks=[range(0, 35), range(35, 70)])
    assert torch.allclose(y[..., 35:].abs().amax(dim=(-2, -1)), torch.ones(5))


def test_global_mode_uses_fitted_constant():
    samples = [np.random.default_rng(i).standard_normal((5, 1000, 70)) for i in range(3)]
    norm = Normalization.fit_global(samples)
    assert norm.mode == "global" and 3.0 < norm.scale < 3.6  # 99.9 % of |N(0,1)| is 3.29
    assert Normalization.from_dict(norm.to_dict()) == norm


def bad(tmp_path, **kwargs):
    write_vel(tmp_path, **kwargs)
    return tmp_path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "no such folder"),
        (lambda p: p, "no data files found"),
        (
            lambda p: bad(p, model=np.full((3, 1, 70, 70), 2000.0, np.float32)),
            "holds 2 samples but model1.npy holds 3",
        ),
        (
            lambda p: bad(p, data=np.zeros((2, 5, 999, 70), np.float32)),
            r"data shape is \[2, 5, 999, 70\], expected \[n, 5, 1000, 70\]",
        ),
        (
            lambda p: bad(p, data=np.zeros((2, 5, 1000, 70), np.float64)),
            "data dtype is float64, expected float32",
        ),
        (
            lambda p: bad(p, model=np.full((2, 70, 70), 2000.0, np.float32)),
            r"model shape is \[2, 70, 70\]",
        ),
        (
            lambda p: bad(
                p,
                model=np.stack(
                    [
                        np.full((1, 70, 70), 2000.0, np.float32),
                        np.full((1, 70, 70), np.nan, np.float32),
                    ]
                ),
            ),
            "sample 1 holds NaN or infinite velocities",
        ),
    ],
)
def test_bad_input_names_the_file_and_the_problem(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        OpenFWIDataset(make(tmp_path))


def test_nan_in_data_is_found_on_read_and_on_scan(tmp_path):
    data = np.zeros((3, 5, 1000, 70), np.float32)
    data[2, 1, 10, 5] = np.nan
    write_vel(tmp_path, n=3, data=data)
    dataset = OpenFWIDataset(tmp_path)
    dataset.raw(1)
    with pytest.raises(DataError, match=r"data1\.npy: sample 2 holds NaN"):
        dataset.raw(2)
    with pytest.raises(DataError, match=r"data1\.npy: sample 2 holds NaN"):
        list(dataset.scan(chunk=2))


def test_missing_partner_and_unreadable_files(tmp_path):
    write_vel(tmp_path)
    (tmp_path / "model/model1.npy").unlink()
    with pytest.raises(DataError, match=r"has no matching model file model1\.npy"):
        OpenFWIDataset(tmp_path)
    (tmp_path / "model/model1.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"not a readable \.npy file"):
        OpenFWIDataset(tmp_path)
