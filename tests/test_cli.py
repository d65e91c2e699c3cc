"""The `epic` console script as a user runs it: real subprocesses, real files."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EPIC = shutil.which("epic", path=str(Path(sys.executable).parent)) or "epic"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EPIC, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("epic: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    assert "data" in result.stdout and "demo" in result.stdout
    assert "simulate" in run("data", "--help").stdout
    assert run("--version").stdout.startswith("epic ")


def test_simulate_info_preview(tmp_path):
    out = tmp_path / "cv"
    result = run(
        "data",
        "simulate",
        "--family",
        "curvevel-b",
        "--samples",
        "3",
        "--out",
        str(out),
        "--seed",
        "9",
        "--per-file",
        "2",
        "--threads",
        "2",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 3 curvevel-b samples in 2 file(s)" in result.stdout
    assert np.load(out / "data/data2.npy").shape == (1, 5, 1000, 70)
    info = run("data", "info", str(out))
    assert info.returncode == 0, info.stderr
    assert "3 samples" in info.stdout and "[3, 5, 1000, 70]" in info.stdout
    assert "data2.npy + model2.npy: 1 samples" in info.stdout
    picture = tmp_path / "p.png"
    assert run("data", "preview", str(out), "--out", str(picture)).returncode == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("data", "simulate", "--family", "salt-a", "--samples", "2", "--out", "x"),
            ["--family", "salt-a"],
        ),
        (
            ("data", "simulate", "--family", "flatvel-a", "--samples", "0", "--out", "x"),
            ["--samples"],
        ),
        (("data", "simulate", "--family", "flatvel-a", "--out", "x"), ["--samples"]),
        (("data", "info", "does-not-exist"), ["does-not-exist: no such folder"]),
        (("data", "preview", "does-not-exist", "--out", "p.png"), ["no such folder"]),
        (
            (
                "data",
                "frobnicate",
            ),
            ["frobnicate"],
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, fragments):
    assert_one_line_error(run(*args, cwd=tmp_path), *fragments)


def test_bad_data_exit_2_naming_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "model").mkdir()
    np.save(tmp_path / "data/data1.npy", np.zeros((2, 5, 1000, 70), np.float32))
    np.save(tmp_path / "model/model1.npy", np.full((3, 1, 70, 70), 2000.0, np.float32))
    assert_one_line_error(run("data", "info", str(tmp_path)), "data1.npy", "holds 2 samples")
