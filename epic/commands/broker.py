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
) -> None:
    """Run the embedded MQTT broker (amqtt) until Ctrl-C or SIGTERM; or make field credentials.

    Prints one line with its URL once it listens. For the field, run Mosquitto with the files
    `epic broker credentials` writes (broker/mosquitto/README.md).
    """
    if ctx.invoked_subcommand is not None:
        return
    from broker.embedded import EmbeddedBroker, run_embedded

    def ready(running: EmbeddedBroker) -> None:
        auth = f"users from {users}" if users else "anonymous allowed"
        rules = f"ACL from {acl}" if acl else "no ACL"
        typer.echo(f"epic broker: listening on {running.url} ({auth}, {rules}); Ctrl-C stops it")

    try:
        run_embedded(host, port, users=users, acl=acl, on_ready=ready)
    except OSError as exc:  # the port is taken, the address is not ours
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    typer.echo("epic broker: stopped")
