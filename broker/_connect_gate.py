"""Credentials checked before amqtt sees a CONNECT, and client ids bound to user names.

amqtt 0.12 acts on a CONNECT's client id before it authenticates the client: a clean
session deletes the existing session of that id (the centre's persistent one, with its
queued latents), and a second connection takes over the first. So anyone who could reach
the port and knew the centre's client id (``epic-central-<deployment>``: not a secret)
could empty its queue with a wrong password, and any device could disconnect it
(``tests/security/test_embedded_broker_auth.py``). With a users file, the embedded broker
therefore reads the CONNECT itself: a wrong user name or password is refused here (CONNACK
"not authorized"); a good one goes on to amqtt with its client id replaced by the user name,
as the field Mosquitto does with ``use_username_as_clientid``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
from amqtt.mqtt.connect import ConnectPacket

__all__ = ["admit"]

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10.0  # a client that opens a socket and says nothing is not kept waiting


class _Replay(ReaderAdapter):
    """The rewritten CONNECT first, then the rest of the connection's bytes."""

    def __init__(self, first: bytes, rest: StreamReaderAdapter) -> None:
        self._first, self._rest = first, rest

    async def read(self, n: int = -1) -> bytes:
        if not self._first:
            return await self._rest.read(n)
        if n == -1 or n >= len(self._first):
            head, self._first = self._first, b""
            if n == -1:
                return head
            return head + await self._rest.read(n - len(head))
        head, self._first = self._first[:n], self._first[n:]
        return head

    def feed_eof(self) -> None:
        self._rest.feed_eof()


async def admit(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    check: Callable[[str | None, str | None], bool],
) -> ReaderAdapter | None:
    """The connection's reader for amqtt, or ``None`` when it was refused (and answered)."""
    source = StreamReaderAdapter(reader)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            connect = await ConnectPacket.from_stream(source)
    except (
        TimeoutError,
        AMQTTError,
        MQTTError,
        NoDataError,
        asyncio.IncompleteReadError,
        ValueError,
    ) as exc:
        log.info("no usable CONNECT from %s: %s", writer.get_extra_info("peername"), exc)
        return None
    if not await asyncio.to_thread(check, connect.username, connect.password):
        writer.write(ConnackPacket.build(0, NOT_AUTHORIZED).to_bytes())
        await writer.drain()
        log.info("refused %s: bad user name or password", writer.get_extra_info("peername"))
        return None
    assert connect.username is not None  # check() admits no anonymous client
    connect.client_id = connect.username
    connect.client_id_is_random = False
    return _Replay(connect.to_bytes(), source)
