"""``epic demo``: the whole system on one machine, with one command.

The embedded broker, the centre and N edge daemons start as separate processes, as in the
field; the edges replay a cached pool of simulated shots (``sim:`` source) at the given
rate, and the centre scores each map against the simulator's ground truth. The monitor's
URL is printed; Ctrl-C (or ``--duration``) stops everything in order.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from epic.commands.options import CENTRE, EDGE, Family, default_of

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "epic-lite-5.pt"


def demo(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Web/API port.")] = default_of(
        CENTRE, "port"
    ),
    broker_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Embedded broker's port.")
    ] = 1883,
    broker: Annotated[
        str | None,
        typer.Option(help="Use this broker (mqtt://HOST:PORT) instead of starting one."),
    ] = None,
    deployment: Annotated[str, typer.Option(help="Deployment name.")] = "demo",
    edges: Annotated[int, typer.Option(min=1, max=70, help="Edge devices.")] = 5,
    rate: Annotated[float, typer.Option(min=0.01, max=50, help="Shots per second.")] = default_of(
        EDGE, "rate"
    ),
    family: Annotated[
        Family, typer.Option("--family", "-f", case_sensitive=False, help="Velocity family.")
    ] = Family["flatfault-a"],
    kill_device: Annotated[
        str | None, typer.Option(help="Kill this device (SIGKILL) after --after seconds.")
    ] = None,
    after: Annotated[float, typer.Option(min=0, help="Seconds before --kill-device.")] = 20.0,
    duration: Annotated[
        float | None, typer.Option(min=1, help="Stop by itself after this many seconds.")
    ] = None,
    checkpoint: Annotated[
        Path,
        typer.Option(
            dir_okay=False,
            help="Model to deploy (N devices = --edges).",
            show_default="the shipped models/epic-lite-5.pt",
        ),
    ] = SHIPPED,
    pool_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Shots simulated once.")
    ] = default_of(EDGE, "pool_size"),
    workdir: Annotated[
        Path, typer.Option(file_okay=False, help="Bundle, database, outboxes and logs.")
    ] = Path("demo-run"),
) -> None:
    """Broker, centre and edge daemons on this machine; prints the monitor's URL."""
    from epic.shared.bundle import write_bundle
    from epic.shared.launcher import LaunchError, Supervisor, get_json, port_in_use
    from epic.shared.pool import ShotPool

    ids = [f"dev-{i}" for i in range(edges)]
    if kill_device is not None and kill_device not in ids:
        raise typer.BadParameter(f"{kill_device!r} is not one of {', '.join(ids)}")
    if port_in_use(port):
        raise typer.BadParameter(f"port {port} is in use; choose another with --port")
    if broker is None and port_in_use(broker_port):
        raise typer.BadParameter(
            f"port {broker_port} is in use (a broker already running?); use --broker-port "
            f"or --broker mqtt://127.0.0.1:{broker_port}"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    # Each demo starts clean: a previous run's maps, queued envelopes and broker sessions
    # would otherwise replay into this one and blur its figures.
    for stale in ("central.sqlite*", "outbox-*.sqlite*", "broker-state.json"):
        for path in workdir.glob(stale):
            path.unlink()
    bundle = workdir / "bundle"
    manifest = write_bundle(checkpoint, bundle, deployment, edges)
    typer.echo(f"deployed {checkpoint.name} -> {bundle} (model hash {manifest.model_hash})")
    # Simulate the pool once, here, with a progress bar: the edges then only replay it.
    ShotPool.open(family.value, size=pool_size, progress=True)

    supervisor = Supervisor(workdir / "logs")
    stop = _StopFlag()
    try:
        url = broker
        if url is None:
            url = f"mqtt://127.0.0.1:{broker_port}"
            # --state: the centre's persistent session (and what is queued for it) survives
            # a broker restart, as Mosquitto's persistence does in the field.
            child = supervisor.start(
                "broker",
                "broker",
                "--port",
                str(broker_port),
                "--state",
                str(workdir / "broker-state.json"),
            )
            supervisor.wait_port(child, broker_port)
        central = supervisor.start(
            "central",
            "central",
            "--bundle",
            str(bundle),
            "--broker",
            url,
            "--port",
            str(port),
            "--db",
            str(workdir / "central.sqlite"),
            "--truth",
            f"sim:{family.value}",
            "--truth-pool-size",
            str(pool_size),
            env={"OMP_NUM_THREADS": "1"},
        )
        # The port answers at once; the centre is ready once /api/health says so (200),
        # after loading and profiling the model. Edges started earlier would send into a
        # broker session the centre has not opened yet.
        supervisor.wait_until(
            central,
            lambda: get_json(f"http://127.0.0.1:{port}/api/health") is not None,
            "/api/health saying ready",
            timeout_s=120,
        )
        for device in ids:
            supervisor.start(
                device,
                "edge",
                "--bundle",
                str(bundle),
                "--device-id",
                device,
                "--broker",
                url,
                "--source",
                f"sim:{family.value}",
                "--rate",
                str(rate),
                "--pool-size",
                str(pool_size),
                "--outbox",
                str(workdir / f"outbox-{device}.sqlite"),
                env={"OMP_NUM_THREADS": "1"},
                group="edges",
            )
        typer.echo(
            f"\nEPIC is running: {edges} edges -> {url} -> centre\n"
            f"  monitor  http://127.0.0.1:{port}/\n"
            f"  API      http://127.0.0.1:{port}/docs\n"
            f"  logs     {supervisor.logs}/\n"
            "Ctrl-C stops everything.\n"
        )
        _watch(supervisor, port, edges, duration, kill_device, after, stop)
    except LaunchError as exc:  # one line; the part's log holds the rest
        raise LaunchError(f"epic demo: {str(exc).splitlines()[0]}") from None
    finally:
        final = _figures(get_json(f"http://127.0.0.1:{port}/api/maps?limit=500"))
        typer.echo("stopping edges, centre and broker ...")
        supervisor.stop_all()
    if final["maps"]:
        typer.echo(
            f"demo figures: {final['maps']} maps ({final['partial']} partial), "
            f"{final['per_s']} maps/s, end-to-end p50 {final['p50']} ms / p95 {final['p95']} ms, "
            f"mean SSIM {final['ssim']}"
        )


class _StopFlag:
    """SIGINT/SIGTERM/SIGHUP end the watch loop; the ``finally`` above stops the children.

    SIGHUP is a closed terminal: the parts, in their own sessions, do not get it, so the demo
    stops them as for Ctrl-C (and were it killed outright, they stop by themselves:
    ``epic.shared.parentwatch``).
    """

    def __init__(self) -> None:
        self.stopped = False
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._set)

    def _set(self, *_: object) -> None:
        self.stopped = True


def _watch(
    supervisor: object,
    port: int,
    edges: int,
    duration: float | None,
    kill_device: str | None,
    after: float,
    stop: _StopFlag,
) -> None:
    from epic.shared.launcher import LaunchError, get_json

    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    killed = False
    next_line = started + 5
    while not stop.stopped:
        now = time.monotonic()
        elapsed = now - started
        if duration is not None and elapsed >= duration:
            break
        for child in supervisor.children:  # type: ignore[attr-defined]
            if not child.alive and child.name in ("broker", "central"):
                raise LaunchError(f"{child.name} stopped unexpectedly; log {child.log}")
        if kill_device and not killed and elapsed >= after:
            for child in supervisor.children:  # type: ignore[attr-defined]
                if child.name == kill_device:
                    child.signal(signal.SIGKILL)
            killed = True
            typer.echo(f"[{elapsed:5.0f} s] killed {kill_device}: watch it go offline")
        if now >= next_line:
            next_line = now + 5
            supervisor.trim_logs()  # type: ignore[attr-defined]
            summary = _figures(get_json(f"{base}/api/maps?limit=500"))
            devices = get_json(f"{base}/api/devices") or {"devices": []}
            online = sum(1 for d in devices["devices"] if d.get("online"))
            typer.echo(
                f"[{elapsed:5.0f} s] maps {summary['maps']:4d} (partial {summary['partial']}), "
                f"devices online {online}/{edges}, end-to-end p50 {summary['p50']} ms, "
                f"SSIM {summary['ssim']}"
            )
        time.sleep(0.2)


def _figures(listing: dict | None) -> dict:
    import numpy as np

    maps = (listing or {}).get("maps", [])
    e2e = [m["timings"]["end_to_end_ms"] for m in maps if m["timings"].get("end_to_end_ms")]
    ssim = [m["ssim"] for m in maps if m.get("ssim") is not None]

    def fmt(values: list[float], q: float) -> str:
        return f"{np.percentile(values, q):.0f}" if values else "-"

    stored = sorted(m["timings"]["decode_end_ns"] for m in maps)
    span_s = (stored[-1] - stored[0]) / 1e9 if len(stored) > 1 else 0.0
    return {
        "maps": len(maps),
        "partial": sum(1 for m in maps if m["partial"]),
        "p50": fmt(e2e, 50),
        "p95": fmt(e2e, 95),
        "ssim": f"{np.mean(ssim):.3f}" if ssim else "-",
        "per_s": f"{(len(stored) - 1) / span_s:.2f}" if span_s > 0 else "-",
    }
