"""``epic demo``: what a newcomer runs first.

Today it simulates a small dataset of one family, checks it back through the reader and
draws it; the live pipeline (broker, edges, centre, monitor) joins it as those parts land.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import Family, Threads, set_threads


def demo(
    family: Annotated[
        Family, typer.Option("--family", "-f", case_sensitive=False, help="Velocity family.")
    ] = Family["flatfault-a"],
    samples: Annotated[int, typer.Option("--samples", "-n", min=1)] = 16,
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False)] = Path("demo-data"),
    seed: Annotated[int, typer.Option(min=0)] = 0,
    threads: Threads = 0,
) -> None:
    """Simulate a small dataset with the physical forward model and summarize it."""
    from shared.data.openfwi import OpenFWIDataset
    from shared.data.simulate import simulate_dataset
    from shared.plots import plot_samples

    set_threads(threads)
    result = simulate_dataset(family.value, samples, out, seed=seed, overwrite=True)
    dataset = OpenFWIDataset(out)
    for _ in dataset.scan():
        pass
    lo, hi = dataset.summary.data_range()
    picture = out / "preview.png"
    picks = [dataset.raw(i) for i in range(min(3, len(dataset)))]
    plot_samples(picks, picture, title=f"{result.family}, seed {seed}")
    per_100 = result.seconds / result.samples * 100
    n = len(dataset)
    typer.echo(
        f"\nEPIC demo: simulated {result.samples} {result.family} samples "
        f"({result.seconds:.1f} s, {per_100:.1f} s per 100)\n"
        f"  data    {out}/data  [{n}, 5, 1000, 70] float32, amplitudes [{lo:.3g}, {hi:.3g}]\n"
        f"  model   {out}/model [{n}, 1, 70, 70] float32, "
        f"{result.v_min:.0f}-{result.v_max:.0f} m/s\n"
        f"  picture {picture}\n"
        f"Next: `epic data info {out}`, or `epic data simulate --help` for bigger datasets."
    )
