"""``epic central``: the central service (assembler, decoder, store, REST/WebSocket API).

Every option can also come from the environment as ``EPIC_CENTRAL_<OPTION>`` (the password
best of all: ``EPIC_CENTRAL_PASSWORD``); an option given here wins. The defaults shown in the
help are ``CentralSettings``' own, the one place they are set.

Start-up order: the arguments and the bundle's manifest are checked, the API's port is
bound (a port in use is refused in well under a second), and only then is the model code
imported, the model loaded and the decoder profiled, while the API answers "starting".
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from epic.central.settings import CentralSettings
from epic.commands.options import given_options, service_option, settings_defaults
from epic.shared.pool import DEFAULT_SIZE
from epic.shared.settings_refusal import settings_refusal


class DecoderKind(enum.StrEnum):
    auto = "auto"
    onnx = "onnx"
    torch = "torch"


class Clock(enum.StrEnum):
    arrival = "arrival"
    synced = "synced"


# CentralSettings' defaults, shown in the help as they are; an option counts as given only
# when it is on the command line, so that EPIC_CENTRAL_* fills the others.
_D = settings_defaults(CentralSettings)
CLOCK_DEFAULT = Clock(_D["clock"])
DECODER_DEFAULT = DecoderKind(_D["decoder"])


_opt = service_option


def central(
    ctx: typer.Context,
    bundle: Annotated[
        Path | None,
        _opt(
            "Deployment bundle folder (epic deploy); required, here or as EPIC_CENTRAL_BUNDLE.",
            file_okay=False,
        ),
    ] = None,
    broker: Annotated[
        str,
        _opt("mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS; a cluster's nodes comma-separated."),
    ] = _D["broker"],
    username: Annotated[str | None, _opt("Broker user.")] = None,
    password: Annotated[str | None, _opt("Broker password; better EPIC_CENTRAL_PASSWORD.")] = None,
    tls_ca: Annotated[Path | None, _opt("CA certificate for mqtts://.", dir_okay=False)] = None,
    deadline_ms: Annotated[float, _opt("T: time budget per sample, ms.")] = _D["deadline_ms"],
    min_devices: Annotated[
        int | None, _opt("Fewest devices to decode at the deadline.", "a majority")
    ] = None,
    clock: Annotated[
        Clock,
        _opt(
            "Count the deadline from a sample's first arrival here, or from the shot time "
            "the edges stamp (synced clocks)."
        ),
    ] = CLOCK_DEFAULT,
    db: Annotated[
        str | None,
        _opt(
            "SQLite file, or a PostgreSQL URL (postgresql://USER:PASS@HOST/DB); ':memory:' "
            "keeps nothing, and then latents are acknowledged on receipt, not once stored.",
            "epic-central-<deployment>.sqlite",
            metavar="<file|url>",
        ),
    ] = None,
    host: Annotated[str, _opt("Web/API address.")] = _D["host"],
    port: Annotated[int, _opt("Web/API port, 0 for any free one.")] = _D["port"],
    retention: Annotated[int, _opt("Maps kept, newest.")] = _D["retention"],
    max_open_samples: Annotated[int, _opt("Samples waiting at most; the oldest is evicted.")] = _D[
        "max_open_samples"
    ],
    refine_window_s: Annotated[
        float, _opt("Late latents re-decode a map this long after, s.")
    ] = _D["refine_window_s"],
    max_envelope_bytes: Annotated[int, _opt("Largest message accepted, bytes.")] = _D[
        "max_envelope_bytes"
    ],
    decode_batch_max: Annotated[int, _opt("Samples decoded together at most.")] = _D[
        "decode_batch_max"
    ],
    threads: Annotated[int, _opt("Torch CPU threads, 0 for all cores.")] = _D["threads"],
    decoder: Annotated[
        DecoderKind,
        _opt(
            "Who runs fusion and decoder: onnxruntime (the bundle's central.onnx, about twice "
            "as fast), torch, or auto (onnxruntime where it can)."
        ),
    ] = DECODER_DEFAULT,
    offline_after_s: Annotated[float, _opt("A silent device is shown late after this, s.")] = _D[
        "offline_after_s"
    ],
    truth: Annotated[
        str | None, _opt("Score maps against the simulator's truth: sim:FAMILY, as the edges.")
    ] = None,
    truth_pool_size: Annotated[
        int | None, _opt("The sim edges' pool size.", f"{DEFAULT_SIZE}, as the edges'")
    ] = None,
    truth_pool_seed: Annotated[int, _opt("The sim edges' pool seed.")] = _D["truth_pool_seed"],
    api_token: Annotated[
        str | None,
        _opt(
            "Bearer token allowing DELETE /api/maps/{id}; better EPIC_CENTRAL_API_TOKEN.",
            "none: deleting is off",
        ),
    ] = None,
    max_live_clients: Annotated[int, _opt("Live monitor clients at once; more are refused.")] = _D[
        "max_live_clients"
    ],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
) -> None:
    """Assemble the edges' latents, decode velocity maps on deadline, store and serve them."""
    given = given_options(ctx, {k: v for k, v in locals().items() if k not in ("ctx", "verbose")})
    from pydantic import ValidationError

    try:
        settings = CentralSettings(**given)
    except ValidationError as exc:
        raise typer.BadParameter(settings_refusal(exc, "EPIC_CENTRAL_", ctx)) from None
    _run(settings, verbose)


def _run(settings: CentralSettings, verbose: bool) -> None:
    from epic.central.listener import listen, url_of
    from epic.shared.manifest import load_manifest

    load_manifest(settings.bundle)  # a wrong folder is refused before anything listens
    sock = listen(settings.host, settings.port)
    typer.echo(f"epic central: listening on {url_of(sock)}; loading the model")

    import asyncio
    import logging
    import signal

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from epic.central.service import CentralService

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The handlers only set a flag; shutdown runs in the main flow (uvicorn's pattern).
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        service = CentralService(settings, listener=sock)
        failed = False
        try:
            if not await _first(service.start(), stop.wait()):
                return  # stopped while starting: the `finally` cleans up what started
            parts = service.parts
            m = parts.manifest
            typer.echo(
                f"epic central: deployment {m.deployment!r}, {m.model} ({m.preset}), "
                f"{len(m.devices)} devices, model hash {m.model_hash}; "
                f"decode p95 {parts.decoder.p95_ms:.1f} ms; "
                f"store {parts.store.path}"
            )
            typer.echo(f"epic central: monitor at {parts.http.url}")
            await _first(stop.wait(), service.wait_failed())
            failed = not stop.is_set()
        finally:
            typer.echo("epic central: stopping")
            await service.stop()
        if failed:
            raise SystemExit(1)

    asyncio.run(main())


async def _first(wanted: Any, other: Any) -> bool:
    """Run both; when one ends, cancel the other. True if ``wanted`` ended (its error, if
    it failed, is raised)."""
    import asyncio
    import contextlib

    tasks = [asyncio.ensure_future(wanted), asyncio.ensure_future(other)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    if tasks[0].cancelled():
        return False
    tasks[0].result()
    return True
