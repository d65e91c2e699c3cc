"""A real TCP server for the link tests: it records what arrives and when, and can echo it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

__all__ = ["Sink", "wait_until"]


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` every 2 ms; ``TimeoutError`` if it stays false for ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


class Sink:
    """``async with Sink() as sink``: listens on ``sink.port``; ``arrivals`` holds
    ``(loop time, chunk)`` as each read returns. ``echo`` sends every chunk back;
    ``reading`` (an Event) can be cleared before a client connects to stall the reader;
    ``rcvbuf`` shrinks the kernel's receive buffer so a stalled reader is felt at once."""

    def __init__(self, *, echo: bool = False, rcvbuf: int | None = None) -> None:
        self.echo = echo
        self.arrivals: list[tuple[float, bytes]] = []
        self.eof = asyncio.Event()
        self.reading = asyncio.Event()
        self.reading.set()
        self.writers: list[asyncio.StreamWriter] = []
        self._rcvbuf = rcvbuf
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    @property
    def total(self) -> int:
        return sum(len(chunk) for _, chunk in self.arrivals)

    def received(self) -> bytes:
        return b"".join(chunk for _, chunk in self.arrivals)

    async def __aenter__(self) -> Sink:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._rcvbuf is not None:
            # Set before listen so that accepted sockets inherit it (and the window scale).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._rcvbuf)
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._handle, sock=sock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self.writers:
            writer.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self.reading.wait()
                data = await reader.read(65536)
                if not data:
                    break
                self.arrivals.append((loop.time(), data))
                if self.echo:
                    writer.write(data)
                    await writer.drain()
            self.eof.set()
        except ConnectionError:
            pass
        finally:
            writer.close()
