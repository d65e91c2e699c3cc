"""``epic deploy``: split a checkpoint into a deployment bundle (manifest, edge, central)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from epic.shared.wire import ID_SPEC


def deploy(
    checkpoint: Annotated[
        Path, typer.Option("--checkpoint", "-c", dir_okay=False, help="A trained checkpoint.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", file_okay=False, help="Bundle folder.")],
    deployment: Annotated[
        str, typer.Option(help=f"Deployment name, {ID_SPEC}; it is in every topic.")
    ] = "demo",
    devices: Annotated[
        int | None,
        typer.Option(min=1, max=70, help="Devices N (must be what the model was trained for)."),
    ] = None,
    device_ids: Annotated[
        str | None,
        typer.Option(help="Comma-separated device ids, west to east (default dev-0 ...)."),
    ] = None,
    onnx: Annotated[
        bool, typer.Option("--onnx", help="Also export each edge encoder to ONNX.")
    ] = False,
) -> None:
    """Write DIR/manifest.json, DIR/edge/<device>.pt (one encoder each) and DIR/central.pt."""
    from epic.shared.bundle import write_bundle

    ids = [s.strip() for s in device_ids.split(",")] if device_ids else None
    manifest = write_bundle(checkpoint, out, deployment, devices, ids, onnx=onnx)
    whole = manifest.total_bytes
    typer.echo(
        f"{out}: deployment {manifest.deployment!r}, {manifest.model} ({manifest.preset}), "
        f"model hash {manifest.model_hash}"
    )
    for d in manifest.devices:
        extra = f", {d.onnx_file}" if d.onnx_file else ""
        typer.echo(
            f"  {d.id:<10} receivers {d.receivers[0]:>2}-{d.receivers[1] - 1:<2} "
            f"{d.edge_file} {d.edge_bytes / 1e3:7.1f} kB ({d.edge_bytes / whole:5.1%}){extra}"
        )
    typer.echo(f"  central    {manifest.central_file} {manifest.central_bytes / 1e3:.1f} kB")
