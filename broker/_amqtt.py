"""Fixes to amqtt 0.12's broker, kept to the smallest overrides that do the job.

1. On every CONNECT, amqtt walks ``Broker._subscriptions`` (every client's filters) and sends
   the new client each retained message matching any of them, at QoS 0
   (``Broker._handle_client_session``). A device that subscribed to nothing would receive,
   say, every other device's retained status. :class:`EpicBroker` sends retained messages only
   for filters the client itself holds, which is what a resumed persistent session is owed.
2. amqtt iterates ``_subscriptions`` (on connect, and per broadcast in ``_run_broadcast``) with
   ``await`` inside the loop, while other tasks add or drop entries; the loop then dies with
   "dictionary changed size during iteration" and the connection, or the message, is lost.
   :class:`_SnapshotDict` makes those loops walk a snapshot instead.
3. A QoS 1 message sent to a client is forgotten (``session.inflight_out.pop`` in a
   ``finally``) however the wait for its PUBACK ends: acknowledged, timed out (5 s), or
   cancelled because the connection died. MQTT 3.1.1 [MQTT-4.4.0-1] wants unacknowledged
   messages sent again when a persistent session reconnects, and amqtt has the code for it
   (``ProtocolHandler._retry_deliveries`` re-sends ``inflight_out`` at start), but nothing
   is left for it to send. A centre killed while a latent was on its way lost that latent
   (``tests/faults/test_broker_inflight.py``). :class:`_EpicHandler` keeps an unacknowledged
   message in ``inflight_out`` for a persistent session, drops it when a late PUBACK comes,
   and registers the PUBACK waiter before writing the PUBLISH, so that no acknowledgement
   can ever arrive ahead of its waiter.
4. Sessions live in memory only: after a restart the broker had forgotten the centre's
   persistent session, and latents published before the centre reconnected were lost.
   With ``state_file``, :class:`EpicBroker` saves persistent sessions and their
   subscriptions (``epic.broker.session_state``) and restores them, offline, at start.
5. Messages queued for an offline persistent session wait in an unbounded queue; here at
   most ``max_queued`` (as Mosquitto's ``max_queued_messages``), the oldest dropped first,
   counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import ItemsView, Iterator
from pathlib import Path
from typing import Any

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import (
    OUTGOING,
    IncomingApplicationMessage,
    OutgoingApplicationMessage,
    Session,
)

from epic.broker.session_state import SavedSession, read_sessions, write_sessions

__all__ = ["MAX_QUEUED", "EpicBroker"]

log = logging.getLogger(__name__)
MAX_QUEUED = 10_000  # per offline session; the field Mosquitto config's max_queued_messages
_DROP_LOG_S = 60.0


class _SnapshotDict(dict[str, Any]):
    """A dict whose iteration walks a copy, so the dict may change while a loop awaits."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        return dict(super().items()).items()


class _EpicHandler(BrokerProtocolHandler):
    """amqtt's per-connection handler with fix 3: outgoing QoS 1 as MQTT wants it."""

    async def _handle_qos1_message_flow(
        self, app_message: OutgoingApplicationMessage | IncomingApplicationMessage
    ) -> None:
        session = self.session
        # amqtt gives each direction its own class: the isinstance is the direction's test
        # again, spelled for the type checker.
        if (
            app_message.direction != OUTGOING
            or not isinstance(app_message, OutgoingApplicationMessage)
            or session is None
        ):
            await super()._handle_qos1_message_flow(app_message)
            return
        packet_id = app_message.packet_id
        if packet_id is None or app_message.puback_packet is not None:
            await super()._handle_qos1_message_flow(app_message)
            return  # amqtt raises for both
        session.inflight_out[packet_id] = app_message
        # A message sent before (this is _retry_deliveries re-sending it) goes with DUP set.
        publish = app_message.build_publish_packet(dup=app_message.publish_packet is not None)
        waiter: asyncio.Future[PubackPacket] = asyncio.get_running_loop().create_future()
        self._puback_waiters[packet_id] = waiter  # before the PUBLISH leaves
        acked = False
        try:
            await self._send_packet(publish)
            app_message.publish_packet = publish
            try:
                app_message.puback_packet = await asyncio.wait_for(waiter, timeout=5)
            except TimeoutError:
                msg = f"Timeout waiting for PUBACK for packet ID {packet_id}"
                self.logger.warning(msg)
                raise TimeoutError(msg) from None
            acked = True
        finally:
            if self._puback_waiters.get(packet_id) is waiter:
                del self._puback_waiters[packet_id]
            if acked or session.clean_session:
                session.inflight_out.pop(packet_id, None)
            # else: kept, and sent again when this persistent session reconnects

    async def handle_puback(self, puback: PubackPacket) -> None:
        packet_id = puback.variable_header.packet_id if puback.variable_header else None
        # Late, the 5 s wait having given up first: the client has it after all, and it is
        # never sent again.
        if (
            packet_id is not None
            and packet_id not in self._puback_waiters
            and self.session
            and self.session.inflight_out.pop(packet_id, None) is not None
        ):
            return
        await super().handle_puback(puback)


class EpicBroker(Broker):
    """amqtt's broker with the three fixes above; everything else is amqtt's own."""

    def __init__(
        self,
        *args: Any,
        state_file: Path | None = None,
        max_queued: int = MAX_QUEUED,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions = _SnapshotDict()
        self.state_file = state_file
        self.max_queued = max_queued
        self.queue_dropped: dict[str, int] = {}  # client id -> messages dropped (fix 5)
        self._drop_logged = 0.0
        self._state_lock = asyncio.Lock()
        self._saving = False  # off until start() has restored, and again at shutdown

    # -- fix 4: persistent sessions across restarts ----------------------------------------
    async def start(self) -> None:
        await super().start()
        if self.state_file is None:
            return
        try:
            saved = await asyncio.to_thread(read_sessions, self.state_file)
        except BaseException:
            await self.shutdown()  # started above: stop its tasks before saying why
            raise
        for entry in saved:
            handler, session = self.create_offline_session(entry.client_id)
            session.clean_session = False
            session.username = entry.username
            self._sessions[entry.client_id] = (session, handler)
            for subscription in entry.subscriptions:
                await self.add_subscription(subscription, session)
        if saved:
            log.info("restored %d persistent session(s) from %s", len(saved), self.state_file)
        self._saving = True

    async def shutdown(self) -> None:
        self._saving = False  # amqtt drops every session on its way out: keep the file
        await super().shutdown()

    def _persistent_sessions(self) -> list[SavedSession]:
        subscriptions: dict[str, list[tuple[str, int]]] = {}
        users: dict[str, str | None] = {}
        for topic_filter, holders in self._subscriptions.items():
            for session, qos in holders:
                if session.clean_session or not session.client_id:
                    continue
                subscriptions.setdefault(session.client_id, []).append((topic_filter, qos))
                users[session.client_id] = session.username
        return [
            SavedSession(client_id, users[client_id], tuple(subs))
            for client_id, subs in sorted(subscriptions.items())
        ]

    async def _save_sessions(self) -> None:
        if not self._saving or self.state_file is None:
            return
        async with self._state_lock:  # one write at a time, each of the newest state
            sessions = self._persistent_sessions()
            try:
                await asyncio.to_thread(write_sessions, self.state_file, sessions)
            except OSError as exc:
                log.warning("cannot save the broker state to %s: %s", self.state_file, exc)

    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        code = await super().add_subscription(subscription, session)
        if not session.clean_session:
            await self._save_sessions()
        return code

    async def _handle_unsubscription(self, client_session: Session, *args: Any) -> None:
        await super()._handle_unsubscription(client_session, *args)
        if not client_session.clean_session:
            await self._save_sessions()

    async def _delete_session(self, client_id: str) -> None:
        await super()._delete_session(client_id)  # a clean-session connect ends the old one
        await self._save_sessions()

    # -- fix 5: a bounded queue per offline session ----------------------------------------
    async def _retain_broadcast_message(
        self, broadcast: dict[str, Any], qos: int, target_session: Session
    ) -> None:
        queue = target_session.retained_messages
        while queue.qsize() >= self.max_queued:
            queue.get_nowait()
            client = target_session.client_id or "?"
            self.queue_dropped[client] = self.queue_dropped.get(client, 0) + 1
            if time.monotonic() - self._drop_logged > _DROP_LOG_S:
                self._drop_logged = time.monotonic()
                log.warning(
                    "queue for offline client %s full (%d messages): dropping the oldest "
                    "(%d dropped so far)",
                    client,
                    self.max_queued,
                    self.queue_dropped[client],
                )
        await super()._retain_broadcast_message(broadcast, qos, target_session)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        holders = self._subscriptions.get(subscription[0], [])
        if not any(held.client_id == session.client_id for held, _ in holders):
            return
        await super()._publish_retained_messages_for_subscription(subscription, session)

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        handler, session = await super()._initialize_client_session(
            reader, writer, remote_address, remote_port
        )
        # amqtt builds the handler by class name inside this method; give it fix 3. The
        # subclass adds no state, so switching the class of the fresh instance is safe.
        handler.__class__ = _EpicHandler
        return handler, session
