"""The results report: both tables hold the right rows and columns and ``evaluate``'s own
figures, a folder seen in training is flagged, the JSON has the same figures, the recorded
command re-creates the file, bad input fails in one line."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from epic.lab.eval.evaluate import evaluate
from epic.lab.eval.results_table import build_report, format_markdown
from epic.lab.train.trainer import TrainConfig, train
from epic.shared.errors import ConfigError
from epic.shared.models.checkpoint import save_checkpoint
from epic.shared.models.registry import build_model
from tests.lab.conftest import TINY_EPIC, assert_one_line_error

DROP_SEED = 3


@pytest.fixture(scope="module")
def tests_dirs(folder_factory) -> list[Path]:
    """Two test "families" of 3 and 2 samples."""
    return [folder_factory("family-a", 3), folder_factory("family-b", 2)]


@pytest.fixture(scope="module")
def checkpoints(
    gradient_data: Path, tests_dirs: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Path]]:
    """Three tiny EPIC-Nets: trained one epoch (5 devices, real meta); untrained with 2
    devices and a meta that claims ``family-b`` as training data; untrained with 1 device
    and no meta at all."""
    root = tmp_path_factory.mktemp("report")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    trained = root / "trained.pt"
    cfg = TrainConfig(
        "epic", [gradient_data], trained, epochs=1, batch_size=6, hparams=TINY_EPIC, progress=False
    )
    train(cfg, log=lambda _: None)
    torch.manual_seed(0)
    leaky = root / "leaky.pt"
    save_checkpoint(
        leaky,
        build_model("epic", n_devices=2, **TINY_EPIC),
        command="epic train ...",
        data=[str(gradient_data.resolve()), str(tests_dirs[1].resolve())],
        seed=0,
        train_seconds=1234.5,
        epochs=7,
    )
    single = root / "single.pt"
    save_checkpoint(single, build_model("epic", n_devices=1, **TINY_EPIC))
    torch.set_num_threads(before)
    yield [trained, leaky, single]


@pytest.fixture(scope="module")
def report(checkpoints, tests_dirs) -> dict:
    return build_report(checkpoints, tests_dirs, drop_seed=DROP_SEED, command="epic report ...")


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Each ``## `` section's Markdown table as rows of cells, the header first."""
    found: dict[str, list[list[str]]] = {}
    section = ""
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("|") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            found.setdefault(section, []).append(cells)
    return found


def number(cell: str) -> float:
    return float(cell.split(" ")[0].rstrip("†").replace(",", ""))


def test_side_by_side_table_holds_evaluates_figures(report, checkpoints, tests_dirs):
    markdown = format_markdown(report)
    side = tables(markdown)["Table 1: side by side"]
    header, rows = side[0], side[1:]
    assert header[:8] == [
        "checkpoint",
        "model",
        "preset",
        "devices",
        "parameters",
        "train s",
        "epochs",
        "trained on",
    ]
    assert header[8:] == [
        f"{name} {m}" for name in ("family-a", "family-b", "mean") for m in ("SSIM", "MAE", "RMSE")
    ]
    assert [r[0] for r in rows] == [f"`{c}`" for c in checkpoints]
    assert [r[3] for r in rows] == ["5", "2", "1"] and rows[1][4:7] == [
        f"{report['checkpoints'][1]['parameters']:,}",
        "1,234",
        "7",
    ]
    assert rows[2][5:8] == ["-", "-", "-"]  # no meta: nothing made up
    assert "gradient" in rows[0][7] and "family-b" in rows[1][7]
    for row, checkpoint, entry in zip(rows, checkpoints, report["checkpoints"], strict=True):
        direct = evaluate(checkpoint, tests_dirs)
        for i, folder in enumerate(direct["folders"]):
            ssim, mae, rmse = (number(c) for c in row[8 + 3 * i : 11 + 3 * i])
            assert ssim == pytest.approx(folder["ssim"], abs=6e-5)
            assert mae == pytest.approx(folder["mae"], abs=0.06)
            assert rmse == pytest.approx(folder["rmse"], abs=0.06)
            assert entry["folders"][i]["ssim"] == pytest.approx(folder["ssim"], rel=1e-6)
        means = [sum(f[m] for f in direct["folders"]) / 2 for m in ("ssim", "mae", "rmse")]
        assert [number(c) for c in row[14:17]] == pytest.approx(means, abs=0.06)
        assert number(row[14]) == pytest.approx(means[0], abs=6e-5)
        assert entry["mean"]["ssim"] == pytest.approx(means[0], rel=1e-6)


def test_robustness_table_drops_k_devices_with_the_seed(report, checkpoints, tests_dirs):
    robust = tables(format_markdown(report))["Table 2: robustness"]
    header, rows = robust[0], robust[1:]
    assert header == ["checkpoint", "model", "devices", "k=0", "k=1", "k=2", "k=3", "k=4"]
    # the single-device model has no row; the 2-device one fills k=0, 1 and pads the rest
    assert [r[0].rstrip("†") for r in rows] == [f"`{c}`" for c in checkpoints[:2]]
    assert rows[1][5:] == ["-", "-", "-"]
    for row, checkpoint in zip(rows, checkpoints[:2], strict=True):
        n = int(row[2])
        base = None
        for k in range(n):
            direct = evaluate(checkpoint, tests_dirs, drop_devices=k, seed=DROP_SEED)
            ssim = sum(f["ssim"] for f in direct["folders"]) / 2
            base = ssim if k == 0 else base
            cell = row[3 + k]
            assert number(cell) == pytest.approx(ssim, abs=6e-5)
            if k:  # the change against k = 0, in brackets
                change = float(cell.split("(")[1].rstrip(")"))
                assert change == pytest.approx(ssim - base, abs=6e-5)
    entry = report["checkpoints"][0]["robustness"]
    assert [r["drop_devices"] for r in entry] == [0, 1, 2, 3, 4] and entry[0]["loss"] == 0
    assert report["checkpoints"][2]["robustness"] is None


def test_a_test_folder_seen_in_training_is_flagged_not_fatal(report):
    markdown = format_markdown(report)
    side = tables(markdown)["Table 1: side by side"]
    trained, leaky = side[1], side[2]
    assert not any("†" in c for c in trained[8:])
    assert "†" not in leaky[8] and leaky[11].endswith("†") and leaky[14].endswith("†")
    notes = markdown.split("## Notes")[1]
    assert "† The checkpoint was trained on this test folder" in notes and "family-b" in notes
    clean = json.loads(json.dumps(report))
    clean["checkpoints"] = clean["checkpoints"][:1]
    assert "never seen in training" in format_markdown(clean)
    assert "†" not in format_markdown(clean)


def test_header_records_command_date_and_machine(report):
    markdown = format_markdown(report)
    head = markdown.split("## Table 1")[0]
    assert "```sh\nepic report ...\n```" in head
    assert f"date: {report['date']}" in head and f"torch {torch.__version__}" in head
    assert f"{report['machine']['cpus']} CPUs" in head and "family-a` (3 samples" in head


def test_cli_writes_markdown_and_json_and_the_command_recreates_them(
    cli, checkpoints, tests_dirs, tmp_path
):
    out, figures = tmp_path / "docs" / "results.md", tmp_path / "results.json"
    args = ["report", "--checkpoint", str(checkpoints[0]), "-c", str(checkpoints[2])]
    args += ["--data", *map(str, tests_dirs), "--out", str(out), "--json", str(figures)]
    code, stdout, err = cli(*args, "--drop-seed", "1", "--threads", "1")
    assert code == 0, err
    assert f"wrote {out}" in stdout and f"wrote {figures}" in stdout
    written = json.loads(figures.read_text())
    assert set(written) == {
        "command",
        "date",
        "machine",
        "drop_seed",
        "max_drop",
        "folders",
        "checkpoints",
    }
    assert set(written["machine"]) == {"platform", "cpus", "torch", "threads", "device"}
    assert [f["name"] for f in written["folders"]] == ["family-a", "family-b"]
    assert [f["samples"] for f in written["folders"]] == [3, 2] and written["drop_seed"] == 1
    first = written["checkpoints"][0]
    assert set(first) >= {
        "checkpoint",
        "model",
        "preset",
        "n_devices",
        "parameters",
        "train_seconds",
        "epochs",
        "data",
        "folders",
        "mean",
        "robustness",
    }
    assert set(first["folders"][0]) >= {"name", "samples", "ssim", "mae", "rmse"}
    assert set(first["robustness"][1]) == {"drop_devices", "ssim", "loss", "folders"}
    markdown = out.read_text()
    command = written["command"]
    assert f"```sh\n{command}\n```" in markdown
    recorded = shlex.split(command)
    assert recorded[:2] == ["epic", "report"] and "--drop-seed" in recorded
    assert recorded[recorded.index("--max-drop") + 1] == "4"
    # re-running the recorded command writes the same tables again
    out.unlink()
    code, _, err = cli(*recorded[1:])
    assert code == 0, err
    assert tables(out.read_text()) == tables(markdown)


def test_cli_bad_input_fails_in_one_line(cli, checkpoints, tests_dirs, tmp_path):
    out = tmp_path / "results.md"
    good = ["--checkpoint", str(checkpoints[2]), "--out", str(out), "--threads", "1"]
    assert_one_line_error(
        cli("report", *good, "-c", str(tmp_path / "none.pt"), "--data", str(tests_dirs[0])),
        "none.pt",
        "no such checkpoint",
    )
    assert_one_line_error(
        cli("report", *good, "--data", str(tests_dirs[0]), str(tmp_path / "gone")),
        "gone",
        "no such folder",
    )
    assert_one_line_error(cli("report", *good), "--data")
    assert_one_line_error(
        cli("report", "--out", str(out), "--data", str(tests_dirs[0])), "--checkpoint"
    )
    assert_one_line_error(
        cli("report", *good, "--data", str(tests_dirs[0]), "--device", "tpu"), "--device"
    )
    assert not out.exists()


def test_max_drop_caps_the_robustness_evaluations(checkpoints, tests_dirs):
    capped = build_report(checkpoints[:2], tests_dirs, drop_seed=DROP_SEED, max_drop=1)
    assert capped["max_drop"] == 1
    for entry in capped["checkpoints"]:
        assert [r["drop_devices"] for r in entry["robustness"]] == [0, 1]
    robust = tables(format_markdown(capped))["Table 2: robustness"]
    assert robust[0] == ["checkpoint", "model", "devices", "k=0", "k=1"]
    assert "k\nstops at 1 (`--max-drop`)" in format_markdown(capped)
    alone = build_report(checkpoints[:1], tests_dirs, drop_seed=DROP_SEED, max_drop=0)
    assert alone["checkpoints"][0]["robustness"] is None
    with pytest.raises(ConfigError, match="max_drop"):
        build_report(checkpoints[:1], tests_dirs, max_drop=-1)


def test_scalability_table_lists_epic_by_its_number_of_devices(report):
    scale = tables(format_markdown(report))["Table 3: scalability"]
    header, rows = scale[0], scale[1:]
    assert header[:2] == ["devices", "checkpoint"] and header[-1] == "k=1"
    assert [int(r[0]) for r in rows] == [1, 2, 5]  # sorted by N
    by_n = {e["n_devices"]: e for e in report["checkpoints"]}
    for row in rows:
        entry = by_n[int(row[0])]
        assert row[1] == f"`{entry['checkpoint']}`"
        assert number(row[6]) == pytest.approx(entry["mean"]["ssim"], abs=6e-5)
        if entry["robustness"]:
            assert number(row[9]) == pytest.approx(entry["robustness"][1]["ssim"], abs=6e-5)
        else:
            assert row[9] == "-"
    one = json.loads(json.dumps(report))
    one["checkpoints"] = one["checkpoints"][:1]
    assert "Table 3" not in format_markdown(one)


def test_a_fine_tune_counts_the_training_and_data_it_started_from(tests_dirs, tmp_path):
    first = {"data": [str(tests_dirs[1].resolve())], "train_seconds_before": 100.0, "init": None}
    second = {"data": ["/elsewhere"], "train_seconds_before": 300.0, "init": first}
    tuned = tmp_path / "tuned.pt"
    torch.manual_seed(0)
    save_checkpoint(
        tuned,
        build_model("epic", n_devices=1, **TINY_EPIC),
        data=["/train"],
        train_seconds=50.0,
        epochs=2,
        init=second,
    )
    entry = build_report([tuned], tests_dirs, drop_seed=0)["checkpoints"][0]
    assert entry["train_seconds"] == 350.0  # its own 50 s and the chain's 300 s before it
    assert entry["data"] == ["/train", "/elsewhere", str(tests_dirs[1].resolve())]
    assert "trained on this test folder" in format_markdown(
        build_report([tuned], tests_dirs, drop_seed=0)
    )
