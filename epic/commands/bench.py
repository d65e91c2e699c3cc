"""``epic bench``: EPIC against the centralized baseline, side by side, through a real broker."""

from __future__ import annotations

import enum
import shlex
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import CENTRE, EDGE, Family, default_of


class Link(enum.StrEnum):
    g4 = "4g"
    wifi = "wifi"
    none = "none"


def _int_list(text: str | None, option: str) -> list[int]:
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of integers", param_hint=option
        ) from None


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def bench(
    link: Annotated[
        Link, typer.Option(help="Each edge's uplink profile (lab/bench/link.py).")
    ] = Link.g4,
    models: Annotated[
        str, typer.Option(help="Comma-separated: epic, inversionnet, fla, sla.")
    ] = "epic,inversionnet",
    edges: Annotated[int, typer.Option(min=1, max=70, help="Edge devices (processes).")] = 5,
    samples: Annotated[int, typer.Option(min=1, help="Samples every edge sends, per model.")] = 30,
    rate: Annotated[
        float,
        typer.Option(min=0.01, max=100, help="Shots per second (4g raw uploads need <= ~0.5)."),
    ] = 0.5,
    family: Annotated[
        Family, typer.Option("--family", "-f", case_sensitive=False, help="Velocity family.")
    ] = Family["flatfault-a"],
    checkpoint: Annotated[
        list[str] | None,
        typer.Option(help="MODEL=PATH (repeatable); defaults: epic and inversionnet shipped."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", dir_okay=False, help="Write the results as JSON.")
    ] = None,
    md: Annotated[Path | None, typer.Option(dir_okay=False, help="Write the tables here.")] = None,
    plot: Annotated[Path | None, typer.Option(dir_okay=False, help="Write a PNG here.")] = None,
    robustness: Annotated[
        bool, typer.Option(help="Also run EPIC with 0..N-1 edges killed mid-run.")
    ] = True,
    scaling: Annotated[
        str | None,
        typer.Option(help="Edge counts for the throughput runs, e.g. 2,5,10,28,70 (link none)."),
    ] = None,
    scaling_rate: Annotated[
        float, typer.Option(min=0.1, max=200, help="Throughput runs' Hz.")
    ] = 100.0,
    scaling_samples: Annotated[int, typer.Option(min=2, help="Samples per throughput run.")] = 100,
    pool_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Shots simulated once.")
    ] = default_of(EDGE, "pool_size"),
    deadline_ms: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="The centre's T, ms.",
            show_default=f"the centre's own, {default_of(CENTRE, 'deadline_ms')}",
        ),
    ] = None,
    lead_s: Annotated[
        float | None, typer.Option(min=1, help="Seconds from launch to the first shot.")
    ] = None,
    workdir: Annotated[
        Path, typer.Option(file_okay=False, help="Bundles, databases, outboxes and logs.")
    ] = Path("runs/bench"),
    progress: Annotated[bool, typer.Option(help="Progress bars.")] = True,
) -> None:
    """Run each model's real pipeline (broker, centre, N edges, one link proxy each) and
    report latency per stage, bytes, LTE energy and SSIM in the paper's Table 1 form."""
    from epic.lab.bench import document
    from epic.lab.bench.harness import BenchConfig, run_bench
    from epic.lab.bench.scenarios import parse_checkpoints

    config = BenchConfig(
        link=link.value,
        models=[m.strip() for m in models.split(",") if m.strip()],
        edges=edges,
        samples=samples,
        rate=rate,
        family=family.value,
        checkpoints=parse_checkpoints(checkpoint or []),
        workdir=workdir,
        pool_size=pool_size,
        robustness=robustness,
        scaling=_int_list(scaling, "--scaling"),
        scaling_rate=scaling_rate,
        scaling_samples=scaling_samples,
        deadline_ms=deadline_ms,
        lead_s=lead_s,
        progress=progress,
        command="epic " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "",
    )
    # SIGTERM as Ctrl-C: the runs' `finally` then stops every process they started (the
    # parts live in their own sessions, so nothing else would).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        doc = run_bench(config, echo=typer.echo)
    except RuntimeError as exc:  # a part did not start or died: one line, its log named
        from epic.shared.launcher import LaunchError

        raise LaunchError(f"epic bench: {str(exc).splitlines()[0]}") from None
    text = document.markdown(doc)
    typer.echo("\n" + text)
    for problem in document.check_schema(doc):  # a model with no maps has no latencies
        typer.echo(f"warning: {problem}", err=True)
    if json_out is not None:
        from epic.commands.options import write_json

        write_json(json_out, doc)
    if md is not None:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(text)
        typer.echo(f"wrote {md}")
    if plot is not None:
        document.plot(doc, plot)
        typer.echo(f"wrote {plot}")
