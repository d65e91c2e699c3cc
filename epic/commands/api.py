"""``epic api``: serve every deployment of a database (REST, WebSocket, the monitor).

Every option can also come from the environment as ``EPIC_API_<OPTION>``
(``EPIC_API_DB`` keeps a database password off the command line).
"""

from __future__ import annotations

from typing import Annotated

import typer

from epic.central.api_settings import ApiSettings
from epic.commands.options import given_options, service_option, settings_defaults
from epic.shared.settings_refusal import settings_refusal

_D = settings_defaults(ApiSettings)


_opt = service_option


def api(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        _opt(
            "The centres' database: postgresql://USER:PASS@HOST/DB (or a SQLite file); "
            "required, here or as EPIC_API_DB.",
            metavar="<url|file>",
        ),
    ] = None,
    host: Annotated[str, _opt("Web/API address.")] = _D["host"],
    port: Annotated[int, _opt("Web/API port, 0 for any free one.")] = _D["port"],
    deployment: Annotated[
        list[str] | None,
        _opt("Serve only this deployment; repeat for more.", "every one in the database"),
    ] = None,
    api_token: Annotated[
        str | None,
        _opt(
            "Bearer token allowing DELETE of maps; better EPIC_API_API_TOKEN.",
            "none: deleting is off",
        ),
    ] = None,
    max_live_clients: Annotated[int, _opt("Live monitor clients at once.")] = _D[
        "max_live_clients"
    ],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO.")] = False,
) -> None:
    """Serve maps, devices and the live monitor of every deployment the centres store in one
    database. Stateless: run as many as needed behind a load balancer."""
    given = given_options(ctx, {k: v for k, v in locals().items() if k not in ("ctx", "verbose")})
    from pydantic import ValidationError

    try:
        settings = ApiSettings(**given)
    except ValidationError as exc:
        raise typer.BadParameter(settings_refusal(exc, "EPIC_API_", ctx)) from None
    _run(settings, verbose)


def _run(settings: ApiSettings, verbose: bool) -> None:
    import asyncio
    import logging
    import signal

    from epic.central.api_service import ApiService
    from epic.central.database import Database, DatabaseError
    from epic.central.listener import listen, url_of
    from epic.shared.errors import OptionError

    sock = listen(settings.host, settings.port)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        service = ApiService(settings, listener=sock)
        try:
            try:
                await service.start()
            except DatabaseError as exc:
                shown = Database(settings.db).shown
                reason = (str(getattr(exc, "orig", None) or exc).splitlines() or ["?"])[0]
                raise OptionError(
                    shown, f"cannot read the database ({reason}); is the server up, the URL right?"
                ) from None
            names = service.deployments.names()
            plural = "" if len(names) == 1 else "s"
            typer.echo(
                f"epic api: {len(names)} deployment{plural} ({', '.join(names) or 'none yet'}) "
                f"from {service.deployments.database.shown}; monitor at {url_of(sock)}"
            )
            await stop.wait()
        finally:
            typer.echo("epic api: stopping")
            await service.stop()

    asyncio.run(main())
