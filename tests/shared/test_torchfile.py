"""Reading .pt files only with weights_only=True, and short reasons when that fails: never
PyTorch's own ~700 characters that end by advising weights_only=False."""

from __future__ import annotations

import fractions
from pathlib import Path

import pytest
import torch

from epic.shared import torchfile
from epic.shared.errors import DataError
from epic.shared.models.checkpoint import load_checkpoint

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "epic-lite-5.pt"


def test_a_good_file_loads_and_a_folder_or_nothing_is_named(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(torchfile.load(tmp_path / "ok.pt")["w"], torch.ones(2))
    with pytest.raises(DataError, match="is a folder, not a checkpoint file"):
        torchfile.load(tmp_path)
    with pytest.raises(DataError, match="no such bundle file"):
        torchfile.load(tmp_path / "none.pt", "bundle file")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"# EPIC\nnot a model\n", "not a PyTorch checkpoint; give one written by `epic train`"),
        (b"", "empty or cut short; copy the checkpoint again"),
        ("half", "damaged or cut short; copy the checkpoint again"),
        ("foreign", "holds a Python object (fractions.Fraction) besides tensors"),
    ],
)
def test_each_failure_has_a_short_safe_reason(tmp_path: Path, content: object, says: str) -> None:
    path = tmp_path / "c.pt"
    if content == "half":
        data = SHIPPED.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "foreign":
        torch.save({"w": fractions.Fraction(1, 3)}, path)
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(torchfile.UnreadableFile) as refused:
        torchfile.load(path)
    text = str(refused.value)
    assert says in text and len(text) - len(str(path)) <= 120
    assert "weights_only" not in text and "arbitrary code" not in text
    # load_checkpoint (shared/models) chains PyTorch's error: the CLI words it the same way.
    with pytest.raises(DataError) as chained:
        load_checkpoint(path)
    assert torchfile.reworded(chained.value) == text


def test_only_errors_from_torch_load_are_reworded(tmp_path: Path) -> None:
    try:
        raise OSError(22, "Invalid argument")
    except OSError as exc:
        error = DataError(tmp_path / "maps.sqlite", "cannot open the map store (Invalid argument)")
        error.__cause__ = exc
    assert torchfile.reworded(error) == str(error)
