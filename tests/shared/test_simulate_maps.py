"""Forward-modelling given maps (``epic data simulate --maps``): sources, layout, resume,
and every kind of bad input refused before any simulation."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.data.simulate_maps import find_map_files, simulate_maps
from epic.shared.errors import DataError
from epic.shared.physics.families import generate_batch
from epic.shared.physics.forward import simulate_shots


@pytest.fixture(scope="module")
def maps():
    return generate_batch("flatvel-a", seed=5, start=0, count=3)


def test_a_zip_of_vmodel_files_becomes_numbered_pairs(tmp_path, maps):
    source = tmp_path / "maps.zip"
    with zipfile.ZipFile(source, "w") as z:
        for name, part in (("vmodel11.npy", maps[:2]), ("vmodel2.npy", maps[2:])):
            np.save(tmp_path / name, part)
            z.write(tmp_path / name, f"inner/{name}")
    out = tmp_path / "out"
    result = simulate_maps(source, out, batch=2, progress=False)
    assert (result.maps, result.files, result.skipped) == (3, 2, 0)
    names = sorted(p.name for p in (out / "data").iterdir())
    assert names == ["data11.npy", "data2.npy"]  # K follows the source file, not the order
    dataset = OpenFWIDataset(out)
    assert len(dataset) == 3
    data, model = dataset.raw(0)  # data2 first, in natural order
    np.testing.assert_array_equal(model, maps[2])
    np.testing.assert_allclose(data, simulate_shots(maps[2:])[0].numpy(), atol=1e-5)


def test_a_rerun_skips_finished_files_and_redoes_a_partial_one(tmp_path, maps):
    folder = tmp_path / "model"
    folder.mkdir()
    np.save(folder / "model1.npy", maps[:1])
    np.save(folder / "model2.npy", maps[1:])
    out = tmp_path / "out"
    simulate_maps(tmp_path, out, progress=False)  # the parent of model/ is found too
    first = (out / "data/data1.npy").stat().st_mtime_ns
    (out / "data/data2.npy").unlink()  # as if killed while writing file 2
    again = simulate_maps(folder, out, progress=False)
    assert (again.files, again.skipped) == (2, 1)
    assert (out / "data/data1.npy").stat().st_mtime_ns == first
    assert np.load(out / "data/data2.npy").shape == (2, 5, 1000, 70)


def test_fault_family_names_and_3d_arrays(tmp_path, maps):
    np.save(tmp_path / "vel4_1_0.npy", maps[:, 0])  # [n, 70, 70]: the channel is implied
    (file,) = find_map_files(tmp_path)
    assert file.number == "4"
    assert file.load().shape == (3, 70, 70)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 1, 70, 70), np.int32) + 2000, "dtype is int32"),
        (np.full((2, 1, 64, 64), 2000, np.float32), "shape is [2, 1, 64, 64]"),
        (np.zeros((0, 1, 70, 70), np.float32), "holds no maps"),
        (np.full((2, 1, 70, 70), 2.5, np.float32), "outside 500-6000 (are they in m/s?)"),
        (np.full((2, 1, 70, 70), 7000, np.float32), "7000-7000 m/s"),
    ],
)
def test_bad_maps_are_refused_naming_the_file(tmp_path, array, message):
    np.save(tmp_path / "model1.npy", array)
    with pytest.raises(DataError, match=r"model1\.npy") as info:
        simulate_maps(tmp_path / "model1.npy", tmp_path / "out", progress=False)
    assert message in str(info.value)
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_nan_is_refused_before_a_good_file_is_simulated(tmp_path, maps):
    np.save(tmp_path / "model1.npy", maps)
    bad = maps.copy()
    bad[1, 0, 5, 5] = np.nan
    np.save(tmp_path / "model2.npy", bad)
    with pytest.raises(DataError, match=r"model2\.npy: map 1 holds NaN"):
        simulate_maps(tmp_path, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_empty_and_missing_sources(tmp_path):
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(DataError, match=r"holds no \.npy files"):
        find_map_files(empty)
    with pytest.raises(DataError, match="no such file or folder"):
        find_map_files(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no velocity-map files"):
        find_map_files(tmp_path)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="expected a folder"):
        find_map_files(tmp_path / "notes.txt")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--maps", "{tmp}/empty.zip"], "the zip holds no .npy files"),
        (["--maps", "{tmp}/nowhere"], "no such file or folder"),
        (["--maps", "{tmp}/empty.zip", "--family", "flatvel-a"], "either --maps or --family"),
        ([], "needs --family and --samples (or --maps)"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, fragment):
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    argv = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "epic", "data", "simulate", "--out", str(tmp_path / "o"), *argv],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
