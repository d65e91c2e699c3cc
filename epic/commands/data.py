"""``epic data``: make, inspect and picture OpenFWI-layout datasets."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import Family, Threads, set_threads

# torch, deepwave and matplotlib are imported inside the commands that use them, so that
# `epic --help` and argument errors answer at once.

app = typer.Typer(help="Make, inspect and picture OpenFWI-layout datasets.", no_args_is_help=True)

Folder = Annotated[Path, typer.Argument(help="An OpenFWI-layout folder.")]


Propagator = enum.Enum(
    "Propagator", {"auto": "auto", "deepwave": "deepwave", "torch": "torch"}, type=str
)


@app.command()
def simulate(
    out: Annotated[
        Path, typer.Option("--out", "-o", file_okay=False, help="Output folder (OpenFWI layout).")
    ],
    family: Annotated[
        Family | None,
        typer.Option("--family", "-f", case_sensitive=False, help="Velocity family to generate."),
    ] = None,
    samples: Annotated[
        int | None, typer.Option("--samples", "-n", min=1, help="Number of maps to generate.")
    ] = None,
    maps: Annotated[
        Path | None,
        typer.Option(
            "--maps",
            help="Forward-model these velocity maps instead of generating them: an OpenFWI "
            "model folder, one modelK.npy / vmodelK.npy file, or a zip of them. Resumes: "
            "a rerun skips the files already written.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="The same seed gives the same data.")] = 0,
    per_file: Annotated[int, typer.Option(min=1, help="Samples per dataK.npy file.")] = 500,
    batch: Annotated[int, typer.Option(min=1, help="Samples propagated together.")] = 16,
    device: Annotated[str, typer.Option(help="torch device for propagation (cpu, cuda).")] = "cpu",
    threads: Threads = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace data already in --out.")] = False,
    propagator: Annotated[
        Propagator,
        typer.Option(
            help="Wave propagation for --maps: deepwave (the reference), torch (the batched "
            "PyTorch propagator, for a GPU without deepwave), auto (deepwave if installed)."
        ),
    ] = Propagator["auto"],
) -> None:
    """Forward-model velocity maps with deepwave in OpenFWI's acquisition geometry: 5 shots
    at grid columns 0, 17, 34, 52 and 69, 70 receivers, 1000 steps of 1 ms. The maps are a
    generated --family, or the real ones given with --maps."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise typer.BadParameter("CUDA is not available on this machine", param_hint="--device")
    if maps is not None:
        if family is not None or samples is not None:
            raise typer.BadParameter(
                "give either --maps or --family/--samples", param_hint="--maps"
            )
        _simulate_maps(maps, out, batch, device, threads, propagator.value)
        return
    if family is None or samples is None:
        raise typer.BadParameter(
            "needs --family and --samples (or --maps)", param_hint="--family/--samples"
        )
    from epic.shared.data.simulate import simulate_dataset

    set_threads(threads)
    result = simulate_dataset(
        family.value,
        samples,
        out,
        seed=seed,
        per_file=per_file,
        batch=batch,
        device=device,
        overwrite=overwrite,
    )
    rate = result.seconds / result.samples * 100
    typer.echo(
        f"wrote {result.samples} {result.family} samples in {result.files} file(s) to {out} "
        f"({result.seconds:.1f} s, {rate:.1f} s per 100 samples); "
        f"velocity {result.v_min:.0f}-{result.v_max:.0f} m/s, |data| max {result.data_absmax:.3g}"
    )


def _simulate_maps(
    source: Path, out: Path, batch: int, device: str, threads: int, propagator: str
) -> None:
    from epic.shared.data.simulate_maps import simulate_maps
    from epic.shared.physics.engine import resolve_engine

    set_threads(threads)
    try:
        resolve_engine(propagator)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--propagator") from exc
    result = simulate_maps(source, out, batch=batch, device=device, propagator=propagator)
    done = result.files - result.skipped
    typer.echo(
        f"wrote {done} file pair(s) to {out} ({result.skipped} already there), "
        f"{result.maps} maps in all, velocity {result.v_min:.0f}-{result.v_max:.0f} m/s "
        f"({result.seconds:.1f} s)"
    )


@app.command()
def info(
    folder: Folder,
    quick: Annotated[bool, typer.Option(help="Headers and models only; skip the data.")] = False,
) -> None:
    """Print shapes, counts and value ranges; check every sample for NaN/inf."""
    from tqdm import tqdm

    from epic.shared.data.openfwi import OpenFWIDataset

    dataset = OpenFWIDataset(folder)
    summary = dataset.summary
    if not quick:
        with tqdm(total=len(dataset), unit="sample", desc="scan", leave=False) as bar:
            for done in dataset.scan():
                bar.update(done)
    shots, nt, receivers = dataset.geometry.data_shape
    gigabytes = len(dataset) * shots * nt * receivers * 4 / 1e9
    v_lo, v_hi = summary.velocity_range()
    typer.echo(
        f"{folder}: {len(summary.files)} file pair(s), {len(dataset)} samples, "
        f"{gigabytes:.2f} GB of seismic data"
    )
    ranges = "" if quick else "  range [{:.4g}, {:.4g}]".format(*summary.data_range())
    typer.echo(f"  data  [{len(dataset)}, {shots}, {nt}, {receivers}] float32{ranges}")
    typer.echo(
        f"  model [{len(dataset)}, 1, {dataset.geometry.nz}, {dataset.geometry.nx}] "
        f"float32  velocity [{v_lo:.0f}, {v_hi:.0f}] m/s"
    )
    for f in summary.files:
        line = f"  {f.pair.data.name} + {f.pair.model.name}: {f.samples} samples"
        if not quick:
            line += f", data [{f.data_min:.4g}, {f.data_max:.4g}]"
        typer.echo(line + f", velocity [{f.v_min:.0f}, {f.v_max:.0f}] m/s")


@app.command()
def preview(
    folder: Folder,
    out: Annotated[Path, typer.Option("--out", "-o", dir_okay=False, help="PNG file to write.")],
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, max=12)] = 3,
    shot: Annotated[int, typer.Option(min=0, help="Which shot gather to draw.")] = 2,
) -> None:
    """Draw velocity maps (m/s) and one shot gather per sample to a PNG."""
    from epic.shared.data.openfwi import OpenFWIDataset
    from epic.shared.plots import plot_samples

    dataset = OpenFWIDataset(folder)
    if shot >= dataset.geometry.n_shots:
        raise typer.BadParameter(
            f"{shot}: the data has {dataset.geometry.n_shots} shots", param_hint="--shot"
        )
    picks = [dataset.raw(i) for i in range(min(samples, len(dataset)))]
    plot_samples(picks, out, shot=shot, title=str(folder), geometry=dataset.geometry)
    typer.echo(f"wrote {out}")
