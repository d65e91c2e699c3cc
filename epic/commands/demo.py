"""``epic demo``: what a newcomer runs first.

Today it simulates a small dataset of one family, checks it back through the reader and
draws it; the live pipeline (broker, edges, centre, monitor) joins it as those parts land.
"""

from __future__ import annotations

from pathlib import Path

import typer

from epic.commands.options import Family, set_threads
from shared.data.openfwi import OpenFWIDataset
from shared.data.simulate import simulate_dataset
from shared.plots import plot_samples


def demo(
    family: Family = typer.Option(Family("flatfault-a"), "--family", "-f", case_sensitive=False,
                               help="Velocity family to simulate."),
    samples: int = typer.Option(16, "--samples", "-n", min=1, help="Number of samples."),
    out: Path = typer.Option(Path("demo-data"), "--out", "-o", file_okay=False,
                             help="Where to write the dataset."),
    seed: int = typer.Option(0, "--seed", min=0),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: all cores)."),
) -> None:
    """Simulate a small dataset with the physical forward model and summarize it."""
    set_threads(threads or None)
    result = simulate_dataset(family.value, samples, out, seed=seed, overwrite=True)
    dataset = OpenFWIDataset(out)
    for _ in dataset.scan():
        pass
    lo, hi = dataset.summary.data_range()
    picture = out / "preview.png"
    plot_samples([dataset.raw(i) for i in range(min(3, len(dataset)))], picture,
                 title=f"{result.family}, seed {seed}")
    typer.echo(
        f"\nEPIC demo: simulated {result.samples} {result.family} samples "
        f"({result.seconds:.1f} s, {result.seconds / result.samples * 100:.1f} s per 100)\n"
        f"  data   {out}/data  [{len(dataset)}, 5, 1000, 70] float32, amplitudes [{lo:.3g}, {hi:.3g}]\n"
        f"  model  {out}/model [{len(dataset)}, 1, 70, 70] float32, "
        f"{result.v_min:.0f}-{result.v_max:.0f} m/s\n"
        f"  picture {picture}\n"
        f"Next: `epic data info {out}`, or `epic data simulate --help` for bigger datasets."
    )
