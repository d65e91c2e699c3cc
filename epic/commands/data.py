"""``epic data``: make, inspect and picture OpenFWI-layout datasets."""

from __future__ import annotations

from pathlib import Path

import typer
from tqdm import tqdm

from epic.commands.options import Family, set_threads
from shared.data.openfwi import OpenFWIDataset
from shared.data.simulate import simulate_dataset

app = typer.Typer(help="Make, inspect and picture OpenFWI-layout datasets.", no_args_is_help=True)


@app.command()
def simulate(
    family: Family = typer.Option(..., "--family", "-f", case_sensitive=False,
                               help="Velocity family to generate."),
    samples: int = typer.Option(..., "--samples", "-n", min=1, help="Number of samples."),
    out: Path = typer.Option(..., "--out", "-o", file_okay=False,
                             help="Output folder (OpenFWI Vel layout)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed; the same seed gives the same data."),
    per_file: int = typer.Option(500, "--per-file", min=1, help="Samples per dataK.npy file."),
    batch: int = typer.Option(8, "--batch", min=1, help="Samples propagated together."),
    device: str = typer.Option("cpu", "--device", help="torch device for propagation (cpu, cuda)."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace data already in --out."),
) -> None:
    """Generate velocity maps and forward-model them with deepwave (contract geometry)."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter("CUDA is not available on this machine", param_hint="--device")
    set_threads(threads or None)
    result = simulate_dataset(family.value, samples, out, seed=seed, per_file=per_file,
                              batch=batch, device=device, overwrite=overwrite)
    rate = result.seconds / result.samples * 100
    typer.echo(
        f"wrote {result.samples} {result.family} samples in {result.files} file(s) to {out} "
        f"({result.seconds:.1f} s, {rate:.1f} s per 100 samples); "
        f"velocity {result.v_min:.0f}-{result.v_max:.0f} m/s, |data| max {result.data_absmax:.3g}"
    )


@app.command()
def info(
    folder: Path = typer.Argument(..., help="An OpenFWI-layout folder."),
    quick: bool = typer.Option(False, "--quick", help="Headers and models only; skip scanning data."),
) -> None:
    """Print shapes, counts and value ranges; check every sample for NaN/inf."""
    dataset = OpenFWIDataset(folder)
    summary = dataset.summary
    if not quick:
        with tqdm(total=len(dataset), unit="sample", desc="scan", leave=False) as bar:
            for done in dataset.scan():
                bar.update(done)
    shots, nt, receivers = dataset.geometry.data_shape
    gigabytes = len(dataset) * shots * nt * receivers * 4 / 1e9
    v_lo, v_hi = summary.velocity_range()
    typer.echo(f"{folder}: {len(summary.files)} file pair(s), {len(dataset)} samples, "
               f"{gigabytes:.2f} GB of seismic data")
    typer.echo(f"  data  [{len(dataset)}, {shots}, {nt}, {receivers}] float32"
               + ("" if quick else "  range [{:.4g}, {:.4g}]".format(*summary.data_range())))
    typer.echo(f"  model [{len(dataset)}, 1, {dataset.geometry.nz}, {dataset.geometry.nx}] "
               f"float32  velocity [{v_lo:.0f}, {v_hi:.0f}] m/s")
    for f in summary.files:
        line = f"  {f.pair.data.name} + {f.pair.model.name}: {f.samples} samples"
        if not quick:
            line += f", data [{f.data_min:.4g}, {f.data_max:.4g}]"
        typer.echo(line + f", velocity [{f.v_min:.0f}, {f.v_max:.0f}] m/s")


@app.command()
def preview(
    folder: Path = typer.Argument(..., help="An OpenFWI-layout folder."),
    out: Path = typer.Option(..., "--out", "-o", dir_okay=False, help="PNG file to write."),
    samples: int = typer.Option(3, "--samples", "-n", min=1, max=12, help="Samples to draw."),
    shot: int = typer.Option(2, "--shot", min=0, help="Which shot gather to draw."),
) -> None:
    """Draw velocity maps (m/s) and one shot gather per sample to a PNG."""
    from shared.plots import plot_samples

    dataset = OpenFWIDataset(folder)
    if shot >= dataset.geometry.n_shots:
        raise typer.BadParameter(f"{shot}: the data has {dataset.geometry.n_shots} shots",
                                 param_hint="--shot")
    picks = [dataset.raw(i) for i in range(min(samples, len(dataset)))]
    plot_samples(picks, out, shot=shot, title=str(folder), geometry=dataset.geometry)
    typer.echo(f"wrote {out}")
