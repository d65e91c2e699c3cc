"""``epic edge``: run one field device's daemon (source, encoder, outbox, MQTT).

Every setting can also come from the environment as ``EPIC_EDGE_<OPTION>`` (the password
best of all: ``EPIC_EDGE_PASSWORD``); an option given here wins. The defaults shown in the
help are ``EdgeConfig``'s own, the one place they are set.
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from epic.commands.options import given_options, settings_defaults
from epic.edge.config import ENV_PREFIX, EdgeConfig
from epic.shared.settings_refusal import settings_refusal


class Mode(enum.StrEnum):
    latent = "latent"
    raw = "raw"


class Runtime(enum.StrEnum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"


class WireDtype(enum.StrEnum):
    int8 = "int8"
    int8_channel = "int8-channel"
    float16 = "float16"
    float32 = "float32"


class Compress(enum.StrEnum):
    none = "none"
    zstd = "zstd"


# EdgeConfig's defaults, shown in the help as they are; an option counts as given only when
# it is on the command line, so that EPIC_EDGE_* fills the others.
_D = settings_defaults(EdgeConfig)
MODE_DEFAULT = Mode(_D["mode"])
RUNTIME_DEFAULT = Runtime(_D["runtime"])
COMPRESS_DEFAULT = Compress(_D["compress"])
_NOT_SETTINGS = ("ctx", "log_level")  # the parameters that are the command's own


def _required(what: str, name: str) -> str:
    return f"{what}; required, here or as {ENV_PREFIX}{name.upper()}."


def edge(
    ctx: typer.Context,
    bundle: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help=_required("Deployment bundle folder (epic deploy)", "bundle")
        ),
    ] = None,
    device_id: Annotated[
        str | None,
        typer.Option("--device-id", help=_required("This device's id (dev-0 ...)", "device_id")),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(
            help=_required(
                "mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS; a cluster's nodes comma-separated",
                "broker",
            )
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help=_required("sim:FAMILY, openfwi:DIR or segy:PATH (a .sgy file or folder)", "source")
        ),
    ] = None,
    rate: Annotated[
        float, typer.Option(help="Shots per second (0: replay as fast as possible).")
    ] = _D["rate"],
    mode: Annotated[
        Mode, typer.Option(help="latent: encode; raw: send the raw block (baseline).")
    ] = MODE_DEFAULT,
    runtime: Annotated[
        Runtime, typer.Option(help="auto: onnxruntime when installed and bundled, else torch.")
    ] = RUNTIME_DEFAULT,
    dtype: Annotated[
        WireDtype | None,
        typer.Option(help="Wire dtype (default int8 for latents, float32 for raw)."),
    ] = None,
    compress: Annotated[Compress, typer.Option(help="Payload compression.")] = COMPRESS_DEFAULT,
    username: Annotated[str | None, typer.Option(help="MQTT user name.")] = None,
    password: Annotated[
        str | None, typer.Option(help="MQTT password; better EPIC_EDGE_PASSWORD.")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option("--tls-ca", dir_okay=False, help="CA certificate: connect with TLS."),
    ] = None,
    outbox: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            help="Outbox file (default ~/.local/state/epic/outbox-<dep>-<device>.sqlite).",
        ),
    ] = None,
    outbox_mb: Annotated[
        float, typer.Option(help="Outbox bound; the oldest envelopes go first.")
    ] = _D["outbox_mb"],
    heartbeat_s: Annotated[
        float, typer.Option(help="A heartbeat after this many seconds without a publish.")
    ] = _D["heartbeat_s"],
    stats_s: Annotated[
        float, typer.Option(help="Every figure in a heartbeat at least this often.")
    ] = _D["stats_s"],
    max_samples: Annotated[
        int | None, typer.Option(help="Stop after K samples are produced and sent.")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for the encoder.")] = _D["threads"],
    start_slot: Annotated[
        int | None,
        typer.Option(help="sim: start at this time slot and skip none (repeatable runs)."),
    ] = None,
    pool_size: Annotated[int, typer.Option(help="sim: shots in the cached pool.")] = _D[
        "pool_size"
    ],
    pool_seed: Annotated[int, typer.Option(help="sim: the pool's seed.")] = _D["pool_seed"],
    keepalive_s: Annotated[int, typer.Option("--keepalive", help="MQTT keepalive, seconds.")] = _D[
        "keepalive_s"
    ],
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run an edge device: read its receivers, encode, publish latents over MQTT (QoS 1).

    Envelopes wait in a disk outbox while the broker is unreachable and go out in order
    after reconnecting. SIGINT/SIGTERM: say offline, keep the outbox, exit 0.
    """
    given = given_options(ctx, {k: v for k, v in locals().items() if k not in _NOT_SETTINGS})
    config = _config(ctx, given)
    from epic.edge.daemon import run_edge

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    # No force=True: a host that already set up logging (a test runner) keeps its handlers.
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("epic.edge").setLevel(level)
    # aiomqtt/paho and amqtt chatter is not the edge's story; warnings still show.
    logging.getLogger("aiomqtt").setLevel(max(level, logging.WARNING))
    raise typer.Exit(run_edge(config))


def _config(ctx: typer.Context, given: dict[str, Any]) -> EdgeConfig:
    """The options given, over ``EPIC_EDGE_*``, over ``EdgeConfig``'s defaults; a refusal is
    one line naming each option (or variable) and why."""
    from pydantic import ValidationError

    from epic.shared.errors import UserError

    try:
        # A terminal shows the sim pool's progress; a library caller chooses for itself.
        return EdgeConfig(**given, progress=True)
    except ValidationError as exc:
        raise UserError(settings_refusal(exc, ENV_PREFIX, ctx)) from None
