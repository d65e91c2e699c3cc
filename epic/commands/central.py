"""``epic central``: the central service (assembler, decoder, store, REST/WebSocket API).

Every option can also come from the environment as ``EPIC_CENTRAL_<OPTION>`` (the password
best of all: ``EPIC_CENTRAL_PASSWORD``); an option given here wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

_Opt = typer.Option


def central(
    bundle: Annotated[Path | None, _Opt(help="Deployment bundle folder (epic deploy).")] = None,
    broker: Annotated[
        str | None,
        _Opt(help="mqtt://HOST:PORT or mqtts://HOST:PORT (default mqtt://127.0.0.1:1883)."),
    ] = None,
    username: Annotated[str | None, _Opt(help="Broker user.")] = None,
    password: Annotated[
        str | None, _Opt(help="Broker password; prefer EPIC_CENTRAL_PASSWORD.")
    ] = None,
    tls_ca: Annotated[Path | None, _Opt(help="CA certificate for mqtts://.")] = None,
    deadline_ms: Annotated[
        float | None, _Opt(help="T: time budget per sample (default 2000).")
    ] = None,
    min_devices: Annotated[
        int | None, _Opt(help="Fewest devices to decode at the deadline (default a majority).")
    ] = None,
    clock: Annotated[
        str | None, _Opt(help="Deadline from the first 'arrival' or the 'synced' shot time.")
    ] = None,
    db: Annotated[
        Path | None,
        _Opt(
            help="SQLite file (default epic-central-<deployment>.sqlite); ':memory:' keeps "
            "nothing, and then latents are acknowledged on receipt, not once stored."
        ),
    ] = None,
    host: Annotated[str | None, _Opt(help="Web/API address (default 127.0.0.1).")] = None,
    port: Annotated[
        int | None, _Opt(help="Web/API port, 0 for any free one (default 8000).")
    ] = None,
    retention: Annotated[int | None, _Opt(help="Maps kept, newest (default 10000).")] = None,
    max_open_samples: Annotated[
        int | None, _Opt(help="Samples waiting at most; the oldest is evicted (default 256).")
    ] = None,
    refine_window_s: Annotated[
        float | None, _Opt(help="Late latents re-decode a map this long after it (default 60).")
    ] = None,
    max_envelope_bytes: Annotated[int | None, _Opt(help="Largest message accepted.")] = None,
    decode_batch_max: Annotated[
        int | None, _Opt(help="Samples decoded together at most (default 16).")
    ] = None,
    threads: Annotated[
        int | None, _Opt(help="Torch CPU threads, 0 for all cores (default 0).")
    ] = None,
    offline_after_s: Annotated[
        float | None, _Opt(help="A silent device is shown late after this (default 15).")
    ] = None,
    truth: Annotated[
        str | None,
        _Opt(help="Score maps against the simulator's truth (sim:FAMILY, as the edges' source)."),
    ] = None,
    truth_pool_size: Annotated[int | None, _Opt(help="The sim edges' pool size.")] = None,
    truth_pool_seed: Annotated[int | None, _Opt(help="The sim edges' pool seed.")] = None,
    api_token: Annotated[
        str | None,
        _Opt(help="Bearer token allowing DELETE /api/maps/{id}; prefer EPIC_CENTRAL_API_TOKEN."),
    ] = None,
    max_live_clients: Annotated[
        int | None, _Opt(help="Live monitor clients at once (default 32); more are refused.")
    ] = None,
    verbose: Annotated[bool, _Opt("--verbose", "-v", help="Log at INFO.")] = False,
) -> None:
    """Assemble the edges' latents, decode velocity maps on deadline, store and serve them."""
    given = {k: v for k, v in locals().items() if v is not None and k != "verbose"}
    from pydantic import ValidationError

    from central.settings import CentralSettings

    try:
        settings = CentralSettings(**given)
    except ValidationError as exc:
        raise typer.BadParameter(_one_line(exc)) from None
    _run(settings, verbose)


def _one_line(exc: object) -> str:
    from pydantic import ValidationError

    assert isinstance(exc, ValidationError)
    parts = []
    for error in exc.errors():
        name = "--" + "-".join(str(x) for x in error["loc"]).replace("_", "-")
        if error["type"] == "missing":
            env = "EPIC_CENTRAL_" + "_".join(str(x) for x in error["loc"]).upper()
            parts.append(f"{name} is required (or {env})")
        else:
            parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _run(settings: object, verbose: bool) -> None:
    import asyncio
    import logging
    import signal

    from central.service import CentralService

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The handlers only set a flag; shutdown runs in the main flow (uvicorn's pattern).
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with CentralService(settings) as service:  # type: ignore[arg-type]
            m = service.manifest
            typer.echo(
                f"epic central: deployment {m.deployment!r}, {m.model} ({m.preset}), "
                f"{len(m.devices)} devices, model hash {m.model_hash}; "
                f"decode p95 {service.decoder.p95_ms:.1f} ms; "
                f"store {service.store.path}"
            )
            typer.echo(f"epic central: monitor at {service.http.url}")
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(service.wait_failed())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            failed = not stop.is_set()
            typer.echo("epic central: stopping")
        if failed:
            raise SystemExit(1)

    asyncio.run(main())
