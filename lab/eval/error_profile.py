"""Where a checkpoint's maps are wrong: error by depth, at interfaces, and what SSIM a blur
of the truth alone would score.

    python -m epic.lab.eval.error_profile CHECKPOINT DIR [DIR ...] [--rows 10]

For each OpenFWI-layout folder: SSIM and MAE of the checkpoint's maps (all devices), the
MAE of each band of depth rows (``--rows`` bands, top to bottom), the MAE of cells just
below a velocity jump of more than 50 m/s (the interfaces) and elsewhere, and the SSIM of
the truth blurred by a Gaussian of 0.5 to 3 cells against the truth itself. The last shows
how sharp a map must be for an SSIM bar: a perfect map blurred by 1.5 cells scores about
0.92 on FlatVel-A.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from epic.lab.inference import normalize
from epic.shared.data.openfwi import OpenFWIDataset
from epic.shared.map_quality import ssim
from epic.shared.models.base import FWIModel
from epic.shared.models.checkpoint import load_checkpoint

__all__ = ["blur", "main", "profile"]

BLURS = (0.5, 1.0, 1.5, 2.0, 3.0)
INTERFACE_MS = 50.0


def blur(v: torch.Tensor, sigma: float) -> torch.Tensor:
    """``v`` ``[B, 1, H, W]`` under a Gaussian of ``sigma`` cells (edges replicated)."""
    r = int(3 * sigma) + 1
    x = torch.arange(-r, r + 1, dtype=v.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    padded = F.pad(v, (r, r, r, r), mode="replicate")
    return F.conv2d(F.conv2d(padded, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))


def profile(pred: torch.Tensor, true: torch.Tensor, rows: int = 10) -> dict:
    """The figures of one folder from maps in m/s, ``[B, 1, H, W]`` each."""
    err = (pred - true).abs()
    bands = torch.tensor_split(err.mean(dim=(0, 1, 3)), rows)
    jump = (true[:, :, 1:] - true[:, :, :-1]).abs() > INTERFACE_MS
    below = err[:, :, 1:]
    return {
        "ssim": float(ssim(pred, true).mean()),
        "mae": float(err.mean()),
        "mae_by_depth": [round(float(b.mean()), 1) for b in bands],
        "mae_interfaces": float(below[jump].mean()) if jump.any() else None,
        "mae_elsewhere": float(below[~jump].mean()),
        "interface_share": float(jump.float().mean()),
        "truth_blurred_ssim": {s: float(ssim(blur(true, s), true).mean()) for s in BLURS},
    }


@torch.inference_mode()
def predict(model: FWIModel, folder: Path, batch: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = OpenFWIDataset(folder, geometry=model.geometry)
    preds, trues = [], []
    for start in range(0, len(dataset), batch):
        items = [dataset[i] for i in range(start, min(start + batch, len(dataset)))]
        data = torch.stack([d for d, _ in items]).float()
        velocity = torch.stack([v for _, v in items]).float()
        x, _ = normalize(model, data, velocity)
        preds.append(model.normalization.velocity_inverse(model(x)).float())
        trues.append(velocity)
    return torch.cat(preds), torch.cat(trues)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("folders", type=Path, nargs="+")
    p.add_argument("--rows", type=int, default=10, help="depth bands")
    args = p.parse_args(argv)
    model = load_checkpoint(args.checkpoint)[0].eval()
    for folder in args.folders:
        f = profile(*predict(model, folder), rows=args.rows)
        print(f"{folder}: SSIM {f['ssim']:.4f}, MAE {f['mae']:.1f} m/s")
        print(
            "  MAE by depth, top to bottom (m/s): "
            + " ".join(f"{m:.0f}" for m in f["mae_by_depth"])
        )
        if f["mae_interfaces"] is not None:
            print(
                f"  MAE below an interface {f['mae_interfaces']:.1f} m/s "
                f"({100 * f['interface_share']:.1f} % of cells), elsewhere {f['mae_elsewhere']:.1f}"
            )
        print(
            "  SSIM of the truth blurred by sigma cells: "
            + ", ".join(f"{s:g}: {v:.3f}" for s, v in f["truth_blurred_ssim"].items())
        )


if __name__ == "__main__":
    main()
