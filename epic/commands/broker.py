"""``epic broker``: run the embedded MQTT broker, and make field credentials for Mosquitto."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# amqtt is imported inside the command that runs it, so `epic --help` answers at once.

app = typer.Typer(invoke_without_command=True)


@app.callback()
def broker(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port (0: pick a free one).")
    ] = 1883,
    users: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Password file (user:hash lines, $7$ or Argon2); without it anyone may connect.",
        ),
    ] = None,
    acl: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Mosquitto-format ACL file; without it every client may use every topic.",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False,
            envvar="EPIC_BROKER_STATE",
            help="Keep persistent sessions (the centre's) in this file across restarts.",
        ),
    ] = None,
) -> None:
    """Run the embedded MQTT broker (amqtt) until Ctrl-C or SIGTERM; or make field credentials.

    Prints one line with its URL once it listens. For the field, run Mosquitto with the files
    `epic broker credentials` writes (broker/mosquitto/README.md).
    """
    if ctx.invoked_subcommand is not None:
        return
    from epic.broker.embedded import EmbeddedBroker, run_embedded

    def ready(running: EmbeddedBroker) -> None:
        auth = f"users from {users}" if users else "anonymous allowed"
        rules = f"ACL from {acl}" if acl else "no ACL"
        typer.echo(f"epic broker: listening on {running.url} ({auth}, {rules}); Ctrl-C stops it")

    try:
        run_embedded(host, port, users=users, acl=acl, state=state, on_ready=ready)
    except OSError as exc:  # the port is taken, the address is not ours
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    typer.echo("epic broker: stopped")


@app.command()
def credentials(
    deployment: Annotated[
        str, typer.Option(help="Deployment id: the <dep> in epic/<dep>/... topics.")
    ],
    devices: Annotated[int, typer.Option(min=1, help="Number of edge devices.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", file_okay=False, help="Folder for the three files.")
    ],
    device_ids: Annotated[
        str | None,
        typer.Option(help="Comma-separated device ids, --devices of them (default dev-0 ...)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace existing files (old passwords stop working).")
    ] = False,
) -> None:
    """Make broker credentials: users `central` and one per device.

    Writes OUT/passwd (Mosquitto $7$ hashes), OUT/acl (each device writes only its own
    topics and reads nothing; central reads the deployment and writes only maps),
    OUT/nats-auth.conf (the same for a NATS cluster, bcrypt) and OUT/credentials.json
    (the clear passwords to hand out), all mode 0600.
    """
    from epic.broker.credentials import write_credentials
    from epic.broker.ids import check_id, default_device_ids

    try:
        check_id(deployment, "deployment")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--deployment") from exc
    if device_ids is None:
        ids = default_device_ids(devices)
    else:
        ids = [part.strip() for part in device_ids.split(",")]
        if len(ids) != devices:
            raise typer.BadParameter(
                f"{len(ids)} ids given for {devices} devices", param_hint="--device-ids"
            )
        if len(set(ids)) != len(ids):
            raise typer.BadParameter("an id is listed twice", param_hint="--device-ids")
        for device in ids:
            try:
                check_id(device, "device id")
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--device-ids") from exc
    if "central" in ids:
        raise typer.BadParameter("'central' is the centre's user name", param_hint="--device-ids")
    files = write_credentials(out, deployment, ids, overwrite=overwrite)
    typer.echo(
        f"wrote {files.passwd}, {files.acl}, {files.nats_auth} and {files.credentials} "
        "(mode 0600) for "
        f"deployment {deployment}: users central, {', '.join(ids)}"
    )
