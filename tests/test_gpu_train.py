"""`scripts/gpu-train.sh`, the one command for a GPU machine, run end to end on the CPU at
tiny sizes, by an interpreter that lacks what the GPU machine lacks (tests/gpu_like)."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from epic.shared.models.checkpoint import load_checkpoint
from epic.shared.physics.families import generate_batch
from tests.test_cli import assert_one_line_error, run

ROOT = Path(__file__).resolve().parents[1]
ZIPS = {
    "FlatVelA-train": ("flatvel-a", "vmodel1.npy"),
    "CurveVelA-train": ("curvevel-a", "vmodel1.npy"),
    "FlatVelA-test11": ("flatvel-a", "vmodel11.npy"),
    "FlatFaultA-test11": ("flatfault-a", "vmodel11.npy"),
    "CurveVelA-test11": ("curvevel-a", "vmodel11.npy"),
}


def openfwi_like(folder: Path) -> Path:
    """OpenFWI's five zips in miniature: three generated maps each."""
    folder.mkdir()
    for k, (name, (family, member)) in enumerate(ZIPS.items()):
        buffer = io.BytesIO()
        np.save(buffer, generate_batch(family, 11, 3 * k, 3))
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as archive:
            archive.writestr(member, buffer.getvalue())
    return folder


@pytest.mark.slow
def test_dry_run_simulates_trains_and_scores_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT / "tests" / "gpu_like"),
        "EPIC_OPENFWI": str(openfwi_like(tmp_path / "openfwi")),
        "EPIC_WORK": str(tmp_path / "work"),
    }
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu-train.sh"), str(out), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "epic-lite-5.pt",
        "eval-drop1.json",
        "eval.json",
        "predictions.png",
        "run.log",
        "summary.json",
        "train.log",
    ]  # what a GPU machine sends back: at most 8 files of at most 16 MiB
    assert all((out / n).stat().st_size < 16 * 2**20 for n in names)

    model, meta = load_checkpoint(out / "epic-lite-5.pt")
    raw = torch.load(out / "epic-lite-5.pt", weights_only=True)["state_dict"]
    params = {name for name, _ in model.named_parameters()}
    assert {raw[name].dtype for name in params} == {torch.bfloat16}  # half the bytes
    assert next(p for p in model.parameters()).dtype == torch.float32  # loads as float32
    assert meta["simulated"]["sources"][2] == {"label": "flatfault-a", "maps": 4, "generated": True}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_samples_per_second"] > 0 and summary["simulated"]["maps_per_second"] > 0
    families = [Path(row["folder"]).name for row in summary["held_out"]["folders"]]
    assert families == ["FlatVelA-test11", "FlatFaultA-test11", "CurveVelA-test11"]
    assert summary["held_out_one_device_lost"]["drop_devices"] == 1
    assert "epoch 2/2" in (out / "train.log").read_text()


def test_script_refuses_bad_arguments_and_missing_maps(tmp_path):
    script = str(ROOT / "scripts" / "gpu-train.sh")
    bad = subprocess.run(["bash", script], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
    env = {**os.environ, "EPIC_OPENFWI": str(tmp_path / "none")}
    missing = subprocess.run(
        ["bash", script, str(tmp_path / "o"), "--dry-run"], capture_output=True, text=True, env=env
    )
    assert missing.returncode == 2 and "no OpenFWI maps" in missing.stderr


def test_train_options_for_simulated_data(tmp_path):
    out = str(tmp_path / "m.pt")
    result = run("train", "--model", "epic", "--out", out, "--epochs", "1", "--family", "x")
    assert_one_line_error(result, "--family", "NAME=COUNT")
    result = run("train", "--model", "epic", "--out", out, "--epochs", "1", "--family", "odd=4")
    assert_one_line_error(result, "--family", "choose from")
    result = run(
        "train",
        "--model",
        "epic",
        "--out",
        out,
        "--epochs",
        "1",
        "--data",
        str(tmp_path),
        "--family",
        "flatvel-a=4",
    )
    assert_one_line_error(result, "not both")
    result = run("train", "--model", "epic", "--out", out, "--epochs", "1")
    assert_one_line_error(result, "--maps")


def test_the_cli_answers_without_the_centre_s_packages(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "gpu_like")}
    epic = [sys.executable, "-m", "epic"]
    central = subprocess.run([*epic, "central"], capture_output=True, text=True, env=env)
    assert central.returncode == 2
    assert central.stderr.strip() == (
        "epic: error: epic central needs pydantic_settings, not installed here: "
        "pip install epic-fwi"
    )
    assert subprocess.run([*epic, "train", "--help"], capture_output=True, env=env).returncode == 0
