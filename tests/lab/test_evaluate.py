"""Evaluation: the figures are the metrics of the model's own predictions, device drops are
seeded and exact, the JSON and the picture get written, bad input fails in one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from epic.lab.eval.evaluate import evaluate, format_table
from epic.lab.train.trainer import TrainConfig, train
from epic.shared import map_quality
from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.errors import ConfigError, DataError
from epic.shared.models.checkpoint import load_checkpoint
from tests.lab.conftest import TINY_EPIC, assert_one_line_error


@pytest.fixture(scope="module")
def checkpoint(gradient_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny EPIC-Net trained two epochs on ``gradient_data``."""
    out = tmp_path_factory.mktemp("eval") / "epic.pt"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    train(
        TrainConfig(
            "epic",
            [gradient_data],
            out,
            epochs=2,
            batch_size=4,
            lr=1e-2,
            hparams=TINY_EPIC,
            progress=False,
        ),
        log=lambda _: None,
    )
    torch.set_num_threads(before)
    yield out


def test_figures_are_the_metrics_of_the_models_predictions(checkpoint, folder_factory):
    folder = folder_factory("held-out", 5)
    result = evaluate(checkpoint, [folder], batch_size=2)
    assert set(result) >= {"ssim", "mae", "rmse", "samples", "folders"}
    assert result["samples"] == 5 and result["drop_devices"] == 0
    model, _ = load_checkpoint(checkpoint)
    data, velocity = zip(*(OpenFWIDataset(folder)[i] for i in range(5)), strict=True)
    data, velocity = torch.stack(data), torch.stack(velocity)
    with torch.no_grad():
        pred = model.normalization.velocity_inverse(
            model(model.normalization.data(data, model.blocks))
        )
    assert result["ssim"] == pytest.approx(float(map_quality.ssim(pred, velocity).mean()), abs=1e-5)
    assert result["mae"] == pytest.approx(float(map_quality.mae(pred, velocity).mean()), rel=1e-4)
    assert result["rmse"] == pytest.approx(float(map_quality.rmse(pred, velocity).mean()), rel=1e-4)
    assert -1 <= result["ssim"] <= 1 and 0 <= result["mae"] <= result["rmse"] <= 3000
    [row] = result["folders"]
    assert row["samples"] == 5 and not row["seen_in_training"]


def test_several_folders_give_a_row_each(checkpoint, gradient_data, folder_factory):
    other = folder_factory("other", 3)
    result = evaluate(checkpoint, [gradient_data, other])
    assert [r["samples"] for r in result["folders"]] == [12, 3] and result["samples"] == 15
    assert [r["seen_in_training"] for r in result["folders"]] == [True, False]
    weighted = sum(r["mae"] * r["samples"] for r in result["folders"]) / 15
    assert result["mae"] == pytest.approx(weighted)
    table = format_table(result)
    assert "all" in table and "trained on this folder" in table and "MAE m/s" in table


def test_dropping_devices_is_seeded_and_independent_of_the_batch_size(checkpoint, gradient_data):
    full = evaluate(checkpoint, [gradient_data])
    dropped = evaluate(checkpoint, [gradient_data], drop_devices=3, seed=1, batch_size=5)
    again = evaluate(checkpoint, [gradient_data], drop_devices=3, seed=1, batch_size=12)
    other = evaluate(checkpoint, [gradient_data], drop_devices=3, seed=2)
    assert dropped["drop_devices"] == 3
    assert dropped["mae"] == pytest.approx(again["mae"], rel=1e-6)
    assert dropped["mae"] != full["mae"] and dropped["mae"] != other["mae"]
    with pytest.raises(ConfigError, match="cannot drop 5"):
        evaluate(checkpoint, [gradient_data], drop_devices=5)


def test_plot_and_missing_inputs(checkpoint, gradient_data, tmp_path):
    picture = tmp_path / "eval.png"
    evaluate(checkpoint, [gradient_data], plot=picture, plot_count=3)
    assert picture.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(DataError, match="no such checkpoint"):
        evaluate(tmp_path / "none.pt", [gradient_data])
    with pytest.raises(DataError, match="no such folder"):
        evaluate(checkpoint, [tmp_path / "none"])


def test_cli_eval_writes_json_and_plot(cli, checkpoint, gradient_data, folder_factory, tmp_path):
    other = folder_factory("cli-eval", 2)
    report, picture = tmp_path / "out" / "eval.json", tmp_path / "eval.png"
    code, out, err = cli(
        "eval",
        "--checkpoint",
        str(checkpoint),
        "--data",
        str(gradient_data),
        str(other),
        "--drop-devices",
        "2",
        "--json",
        str(report),
        "--plot",
        str(picture),
        "--threads",
        "1",
    )
    assert code == 0, err
    written = json.loads(report.read_text())
    assert written["samples"] == 14 and written["drop_devices"] == 2
    assert {"ssim", "mae", "rmse"} <= set(written) and len(written["folders"]) == 2
    assert "2 device(s) dropped" in out and "SSIM" in out and f"wrote {report}" in out
    assert picture.is_file()


def test_cli_eval_bad_arguments_fail_in_one_line(cli, checkpoint, gradient_data, tmp_path):
    ckpt = ["eval", "--checkpoint", str(checkpoint), "--threads", "1"]
    assert_one_line_error(
        cli(*ckpt, "--data", str(gradient_data), "--drop-devices", "5"),
        "--drop-devices",
        "cannot drop 5",
    )
    assert_one_line_error(cli(*ckpt, "--data", str(tmp_path / "none")), "no such folder")
    assert_one_line_error(cli(*ckpt), "--data")
    assert_one_line_error(
        cli("eval", "--checkpoint", str(tmp_path / "x.pt"), "--data", str(gradient_data)),
        "no such checkpoint",
    )
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    assert_one_line_error(cli("eval", "-c", str(garbage), "-d", str(gradient_data)), "garbage.pt")
