"""Serving the API (``epic.central.api.create_app``) with uvicorn on the service's own loop.

The socket is bound before uvicorn starts (``epic.central.listener``, by ``epic central`` before it
even imports the model code), so a port in use is one clear error at once (uvicorn would
``sys.exit`` from inside a task) and port 0 tells its real port.
Signals belong to the service, not to uvicorn: see ``_Server.capture_signals``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from epic.central.deployments import Deployments
from epic.central.listener import ListenError, listen
from epic.central.view import CentralView

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would install its own SIGINT/SIGTERM handlers and re-raise the signal when
        # it stops; the service stops uvicorn itself (should_exit) as one step of shutdown.
        yield


class HttpServer:
    def __init__(
        self,
        served: CentralView | Deployments,
        host: str,
        port: int,
        sock: socket.socket | None = None,
        **app_options: object,
    ) -> None:
        """``served``: a centre's view, or every deployment (``epic api``); ``sock``: a socket
        already listening (``epic.central.listener.listen``), or None to bind ``host:port``."""
        self.served, self.host, self.requested_port = served, host, port
        self.app_options = app_options  # create_app's: api_token, max_live_clients
        self._sock = sock
        self.port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str | None:
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        from epic.central.api import create_app  # FastAPI: only when serving

        sock = self._sock or listen(self.host, self.requested_port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.served, **self.app_options),  # type: ignore[arg-type]
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()  # raise what stopped it
            raise ListenError(self.url or "http", "the HTTP server stopped at start-up")

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            async with asyncio.timeout(10):
                await self._task
        except TimeoutError:
            log.warning("HTTP server did not stop in 10 s; cancelling it")
            self._task.cancel()
