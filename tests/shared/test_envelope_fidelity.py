"""What int8 on the wire costs the shipped model: under 0.002 SSIM, 48 numbers in 110 bytes."""

from __future__ import annotations

from pathlib import Path

from epic.lab.eval.envelope_fidelity import wire_fidelity
from epic.shared.models.checkpoint import load_checkpoint
from epic.shared.wire import LatentDtype

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "epic-lite-5.pt"


def test_int8_latents_cost_under_0_002_ssim(tiny_dataset: Path) -> None:
    model, _ = load_checkpoint(SHIPPED)
    figures = wire_fidelity(model, [tiny_dataset], dtypes=[LatentDtype.INT8, LatentDtype.FLOAT32])
    int8 = figures["int8"]
    assert int8["samples"] == 5
    assert abs(int8["ssim_loss_mean"]) < 0.002
    assert int8["ssim_loss_max"] < 0.005
    assert int8["bytes_per_envelope"] <= 120  # 5 of them: 550 of the 1,400 B a sample
    assert figures["float32"]["ssim_loss_max"] == 0.0
    assert figures["float32"]["bytes_per_envelope"] > 2 * int8["bytes_per_envelope"]
