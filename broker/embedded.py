"""EPIC's embedded MQTT broker: amqtt, run in-process, for the demo, tests and small sites.

``async with EmbeddedBroker(port=0) as broker:`` listens on ``broker.url`` until the block ends.
Port 0 picks a free port; ``broker.port`` is the real one. ``users=`` (a password file) and
``acl=`` (a Mosquitto ACL file) switch on authentication and topic access control.

What the embedded broker does, as tested in ``tests/broker/test_embedded.py`` against aiomqtt
clients (MQTT 3.1.1) with amqtt 0.12:

- QoS 0 and 1. A message reaches a subscriber at its *subscription's* QoS (MQTT says the
  lower of the publisher's and the subscription's; amqtt takes the subscription's).
- Retained messages, and clearing them with an empty retained payload.
- Last Will: published (and retained, with the will's retain flag) when a client's connection
  drops without DISCONNECT; not after a clean DISCONNECT.
- Persistent sessions: a ``clean_session=False`` subscriber that disconnects keeps its
  subscriptions, and QoS 1 messages published meanwhile are delivered when it reconnects
  with the same client id. Those queued messages arrive with the *retain flag set* (amqtt
  sends them as retained), so a consumer must not take the flag to mean "stale state".
  amqtt keeps no persistent session for a client it marks anonymous; EPIC's open mode (no
  ``users``) does not mark clients so (``epic.broker._plugins``).
- Users: ``user:hash`` lines, the hash Mosquitto 2's ``$7$`` (what ``epic broker
  credentials`` writes) or amqtt's Argon2; clients without a valid username and password are
  refused, before amqtt acts on their CONNECT, and a client's id is its user name (as the
  field Mosquitto's ``use_username_as_clientid``): ``epic.broker._connect_gate``.
- ACL: Mosquitto's ``acl_file`` format (``epic.broker.acl``) with its meaning: deny wins, ``read``
  covers subscribing and delivery, ``write`` covers publishing; no ``pattern`` lines. A
  denied SUBSCRIBE is refused in the SUBACK (0x80); Mosquitto 2.0 grants it for MQTT 3.1.1
  and delivers nothing.

What it lacks, and where that matters:

- Little survives a restart: queued and retained messages live in memory (amqtt's SQL
  persistence plugin needs SQLAlchemy, which EPIC does not install). With ``state=`` (``epic
  broker --state FILE``) persistent sessions and their subscriptions are kept in FILE, so a
  centre's session outlives a restart and latents published before it reconnects wait for
  it (``epic.broker.session_state``); without it, those latents are lost. The field broker is
  Mosquitto with ``persistence true`` (``broker/mosquitto/``).
- A queue for an offline persistent session holds at most 10,000 messages (the oldest are
  dropped, counted and logged), like the field config's ``max_queued_messages``.
- No TLS here (amqtt can, EPIC does not expose it): field traffic goes through Mosquitto's
  TLS listener.
- A denied publish is dropped silently (MQTT 3.1.1 has no negative PUBACK), as Mosquitto does.
- When a persistent session resumes, amqtt re-sends the retained messages matching its
  filters (QoS 0, retain flag set); Mosquitto sends retained messages only on SUBSCRIBE.
  Two amqtt bugs are worked around in ``epic.broker._amqtt`` (retained messages sent to clients
  that never subscribed; a race that dropped connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter
from amqtt.contexts import BrokerConfig, ListenerConfig, ListenerType

from epic.broker._amqtt import EpicBroker
from epic.broker._connect_gate import admit
from epic.broker._plugins import (
    AclFilePlugin,
    OpenAuthPlugin,
    PasswordFileAuthPlugin,
    check_password,
    hash_supported,
)
from epic.broker.acl import parse_acl
from epic.shared.errors import BrokerFileError

__all__ = ["EmbeddedBroker", "read_users", "run_embedded"]

log = logging.getLogger(__name__)

_LISTENER = "default"
_SHUTDOWN_TIMEOUT_S = 5.0


def quiet_amqtt(level: int = logging.WARNING) -> None:
    """amqtt logs every connection and packet at INFO/DEBUG; keep it to warnings and worse."""
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(level)


def read_users(path: Path | str) -> dict[str, str]:
    """Read a password file (``user:hash`` lines, ``#`` comments); name the line that is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerFileError(path, f"cannot read the users file ({exc})") from exc
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not user:
            raise BrokerFileError(path, f"line {number}: expected 'user:hash'")
        if not hash_supported(encoded):
            raise BrokerFileError(
                path, f"line {number}: user {user!r} has a hash that is neither $7$ nor Argon2"
            )
        users[user] = encoded
    if not users:
        raise BrokerFileError(path, "no users in the file")
    return users


class EmbeddedBroker:
    """An amqtt broker listening on ``host:port`` while the ``async with`` block runs.

    ``users``: a password file; without it, anyone may connect. ``acl``: a Mosquitto ACL file;
    without it, every client may use every topic. ``state``: a file that keeps persistent
    sessions across restarts (``epic.broker.session_state``). The files are read when the block
    starts, and a bad one raises :class:`~epic.shared.errors.BrokerFileError`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        users: Path | str | None = None,
        acl: Path | str | None = None,
        state: Path | str | None = None,
        quiet: bool = True,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0-65535, got {port}")
        self.host = host
        self._requested_port = port
        self._users = Path(users) if users is not None else None
        self._acl = Path(acl) if acl is not None else None
        self._state = Path(state) if state is not None else None
        self._quiet = quiet
        self._broker: EpicBroker | None = None
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._users_table: dict[str, str] | None = None  # read at start, with a users file

    @property
    def port(self) -> int:
        """The port it listens on (the real one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("the broker is not running")
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://HOST:PORT``."""
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> BrokerConfig:
        plugins: dict[str, Any] = {}
        if self._users is None:
            plugins[_qualname(OpenAuthPlugin)] = {}
        else:
            self._users_table = read_users(self._users)
            plugins[_qualname(PasswordFileAuthPlugin)] = {"users": self._users_table}
        if self._acl is not None:
            plugins[_qualname(AclFilePlugin)] = AclFilePlugin.config_for(parse_acl(self._acl))
        # An "external" listener: we own the socket (asyncio.start_server below), so port 0
        # works and the real port is read from our own server, not from amqtt's internals.
        listener = ListenerConfig(type=ListenerType.EXTERNAL)
        return BrokerConfig(listeners={_LISTENER: listener}, plugins=plugins)

    async def __aenter__(self) -> Self:
        if self._quiet:
            quiet_amqtt()
        self._broker = EpicBroker(self._config(), state_file=self._state)
        await self._broker.start()
        try:
            self._server = await asyncio.start_server(
                self._on_connection, self.host, self._requested_port, reuse_address=True
            )
        except OSError:
            await self._broker.shutdown()
            raise
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._broker is not None
        self._server.close()
        # amqtt stops each session's handler, which closes its connection. Connections amqtt
        # does not know yet (still before CONNECT) are aborted after a bounded wait rather than
        # cancelled: on Python 3.11 a cancelled start_server callback task logs a traceback.
        await self._broker.shutdown()
        if self._connections:
            _, pending = await asyncio.wait(self._connections, timeout=_SHUTDOWN_TIMEOUT_S)
            for task in pending:
                self._connections[task].transport.abort()
            if pending:
                await asyncio.wait(pending, timeout=_SHUTDOWN_TIMEOUT_S)
        await self._server.wait_closed()
        self._port = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._broker is not None
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        adapter = StreamWriterAdapter(writer)
        try:
            source: ReaderAdapter | None = StreamReaderAdapter(reader)
            if self._users_table is not None:
                # Credentials before amqtt acts on the client id (broker._connect_gate).
                users = self._users_table
                source = await admit(
                    reader, writer, lambda user, password: check_password(users, user, password)
                )
            if source is not None:
                await self._broker.external_connected(source, adapter, _LISTENER)
        except Exception:
            # One client's broken connection must not take the listener down.
            log.warning(
                "connection from %s ended with an error",
                writer.get_extra_info("peername"),
                exc_info=True,
            )
        finally:
            with contextlib.suppress(Exception):
                await adapter.close()
            self._connections.pop(task, None)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def run_embedded(
    host: str = "127.0.0.1",
    port: int = 1883,
    *,
    users: Path | None = None,
    acl: Path | None = None,
    state: Path | None = None,
    on_ready: Callable[[EmbeddedBroker], None] | None = None,
) -> None:
    """Run the embedded broker in the foreground until SIGINT or SIGTERM, then stop cleanly.

    ``on_ready`` is called once it listens (``epic broker`` prints the URL from it).
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # The handlers only set a flag; shutdown runs in the main flow (uvicorn's pattern).
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with EmbeddedBroker(host, port, users=users, acl=acl, state=state) as broker:
                if on_ready is not None:
                    on_ready(broker)
                await stop.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    asyncio.run(main())
