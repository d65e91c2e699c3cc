"""``epic api``: the stateless API and monitor for every deployment in one database.

It decodes nothing and holds nothing: maps, devices and health come from the database the
centres write (``epic.central.stored_view``), so run as many as the web traffic needs,
behind any HTTP load balancer, on machines other than the centres'. Rendering and web
traffic then never share a core with a decoder.
"""

from __future__ import annotations

import logging
import socket

from epic.central.api_settings import ApiSettings
from epic.central.stored_view import StoredDeployments
from epic.central.webserver import HttpServer

__all__ = ["ApiService"]

log = logging.getLogger(__name__)


class ApiService:
    def __init__(self, settings: ApiSettings, listener: socket.socket | None = None) -> None:
        self.settings = settings
        self.deployments = StoredDeployments(settings.db, settings.deployment)
        token = settings.api_token
        self.http = HttpServer(
            self.deployments,
            settings.host,
            settings.port,
            sock=listener,
            api_token=None if token is None else token.get_secret_value(),
            max_live_clients=settings.max_live_clients,
        )

    async def start(self) -> None:
        """Open the database (``DatabaseError`` if it cannot), then serve."""
        await self.deployments.start()
        await self.http.start()

    async def stop(self) -> None:
        await self.http.stop()  # first: live clients' feeds end with the views below
        await self.deployments.stop()
