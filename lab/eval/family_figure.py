"""Real OpenFWI maps beside the simulator's, for the three A families we train on.

``python -m epic.lab.eval.family_figure`` writes ``docs/family-comparison.png`` (one pair of
rows per family: real on top, simulated below, one colour scale in m/s) and prints the statistics
of ``epic.shared.physics.families.statistics`` for both. Real maps are read from the user's copy
of OpenFWI in ``../shared/openfwi/`` (CC BY-NC-SA: cite it wherever the picture is shown).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt
import numpy as np

from epic.shared.geometry import CONTRACT
from epic.shared.physics.families import generate_batch
from epic.shared.physics.families.statistics import compare, read_zipped_maps

REPO = Path(__file__).resolve().parents[2]
OPENFWI = REPO.parent / "shared" / "openfwi"
FAMILIES = {  # family: (title, held-out real file)
    "flatvel-a": ("FlatVel-A", "FlatVelA-test11.zip"),
    "curvevel-a": ("CurveVel-A", "CurveVelA-test11.zip"),
    "flatfault-a": ("FlatFault-A", "FlatFaultA-test11.zip"),
}


def figure(openfwi: Path, out: Path, per_row: int = 5, seed: int = 0) -> dict[str, str]:
    """Draw the picture; return each family's statistics table (real vs generated)."""
    rows = 2 * len(FAMILIES)
    fig, axes = plt.subplots(rows, per_row, figsize=(2.1 * per_row + 1.2, 2.2 * rows))
    extent = (
        0,
        CONTRACT.nx * CONTRACT.spacing_m / 1000,
        CONTRACT.nz * CONTRACT.spacing_m / 1000,
        0,
    )
    tables = {}
    shown = None
    for f, (family, (title, zip_name)) in enumerate(FAMILIES.items()):
        real = read_zipped_maps(openfwi / zip_name, 500)
        generated = generate_batch(family, seed=seed, start=0, count=500)
        tables[family] = compare({"real": real, "generated": generated})
        # Spread the real examples over the file, so they are not one generator run's start.
        picks = np.linspace(0, len(real) - 1, per_row).astype(int)
        for row, (maps, kind) in enumerate(((real[picks], "real"), (generated, "simulated"))):
            for c in range(per_row):
                ax = axes[2 * f + row, c]
                shown = ax.imshow(
                    maps[c, 0],
                    cmap="viridis",
                    vmin=CONTRACT.v_min,
                    vmax=CONTRACT.v_max,
                    extent=extent,
                )
                ax.set_xticks([])
                ax.set_yticks([])
            axes[2 * f + row, 0].set_ylabel(f"{title}\n{kind}", fontsize=10)
    fig.subplots_adjust(left=0.06, right=0.86, top=0.98, bottom=0.02, wspace=0.05, hspace=0.08)
    assert shown is not None  # FAMILIES is not empty: maps were drawn
    bar = fig.add_axes((0.88, 0.25, 0.025, 0.5))
    fig.colorbar(shown, cax=bar, label="velocity (m/s)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    plt.close(fig)
    return tables


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m epic.lab.eval.family_figure", description=__doc__.split("\n")[0]
    )
    p.add_argument("--openfwi", type=Path, default=OPENFWI, help="folder of OpenFWI zips")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "family-comparison.png")
    p.add_argument("--per-row", type=int, default=5, help="maps per row")
    args = p.parse_args(argv)
    missing = [z for _, z in FAMILIES.values() if not (args.openfwi / z).exists()]
    if missing:
        print(f"not found in {args.openfwi}: {', '.join(missing)}")
        return 1
    for family, table in figure(args.openfwi, args.out, args.per_row).items():
        print(f"{family}\n{table}\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
