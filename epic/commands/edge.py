"""``epic edge``: run one field device's daemon (source, encoder, outbox, MQTT)."""

from __future__ import annotations

import enum
import logging
from pathlib import Path
from typing import Annotated

import typer


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


def edge(
    bundle: Annotated[
        Path, typer.Option(file_okay=False, help="Deployment bundle folder (epic deploy).")
    ],
    device_id: Annotated[str, typer.Option("--device-id", help="This device's id (dev-0 ...).")],
    broker: Annotated[str, typer.Option(help="mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS.")],
    source: Annotated[
        str, typer.Option(help="sim:FAMILY, openfwi:DIR or segy:PATH (a .sgy file or folder).")
    ],
    rate: Annotated[
        float, typer.Option(min=0, help="Shots per second (0: replay as fast as possible).")
    ] = 1.0,
    mode: Annotated[
        Mode, typer.Option(help="latent: encode; raw: send the raw block (baseline).")
    ] = Mode.latent,
    runtime: Annotated[
        Runtime, typer.Option(help="auto: onnxruntime when installed and bundled, else torch.")
    ] = Runtime.auto,
    dtype: Annotated[
        WireDtype | None,
        typer.Option(help="Wire dtype (default int8 for latents, float32 for raw)."),
    ] = None,
    compress: Annotated[Compress, typer.Option(help="Payload compression.")] = Compress.none,
    username: Annotated[str | None, typer.Option(help="MQTT user name.")] = None,
    password: Annotated[
        str | None,
        typer.Option(envvar="EPIC_MQTT_PASSWORD", help="MQTT password (or EPIC_MQTT_PASSWORD)."),
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
        float, typer.Option(min=0.001, help="Outbox bound; the oldest envelopes go first.")
    ] = 64.0,
    heartbeat_s: Annotated[
        float,
        typer.Option(min=0.05, help="A heartbeat after this many seconds without a publish."),
    ] = 5.0,
    stats_s: Annotated[
        float,
        typer.Option(min=0.05, help="Every figure in a heartbeat at least this often."),
    ] = 60.0,
    max_samples: Annotated[
        int | None, typer.Option(min=0, help="Stop after K samples are produced and sent.")
    ] = None,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for the encoder.")] = 1,
    start_slot: Annotated[
        int | None,
        typer.Option(min=0, help="sim: start at this time slot and skip none (repeatable runs)."),
    ] = None,
    pool_size: Annotated[int, typer.Option(min=1, help="sim: shots in the cached pool.")] = 32,
    pool_seed: Annotated[int, typer.Option(min=0, help="sim: the pool's seed.")] = 0,
    keepalive: Annotated[int, typer.Option(min=1, help="MQTT keepalive, seconds.")] = 30,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run an edge device: read its receivers, encode, publish latents over MQTT (QoS 1).

    Envelopes wait in a disk outbox while the broker is unreachable and go out in order
    after reconnecting. SIGINT/SIGTERM: say offline, keep the outbox, exit 0.
    """
    from edge.config import EdgeConfig
    from edge.connection import BrokerEndpoint
    from edge.daemon import run_edge

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    # No force=True: a host that already set up logging (a test runner) keeps its handlers.
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("edge").setLevel(level)
    # aiomqtt/paho and amqtt chatter is not the edge's story; warnings still show.
    logging.getLogger("aiomqtt").setLevel(max(level, logging.WARNING))
    endpoint = BrokerEndpoint.parse(broker, username, password, tls_ca)
    config = EdgeConfig(
        bundle=bundle,
        device_id=device_id,
        broker=endpoint,
        source=source,
        rate=rate,
        mode=mode.value,
        runtime=runtime.value,
        dtype=dtype.value if dtype else None,
        compress=compress.value,
        outbox=outbox,
        outbox_mb=outbox_mb,
        heartbeat_s=heartbeat_s,
        stats_s=stats_s,
        max_samples=max_samples,
        threads=threads,
        start_slot=start_slot,
        pool_size=pool_size,
        pool_seed=pool_seed,
        keepalive_s=keepalive,
        progress=True,
    )
    raise typer.Exit(run_edge(config))
