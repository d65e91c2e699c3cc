"""The centre's MQTT side: one connection that reads the deployment's topics, validates each
message and hands it over, and publishes the map summaries.

- A fixed client id (``epic-central-<deployment>``) and ``clean_session=False``: while the
  centre is down the broker keeps its subscriptions and queues the QoS 1 latents for it.
- Reconnects forever with capped exponential backoff; ``connected`` says where it stands.
- The read loop only validates (cheap: a CRC and a few hundred bytes) and hands over to a
  bounded queue; it never waits for a decode. When even that queue is full, aiomqtt's own
  bounded queue fills next and what overflows there is counted (``overflow``).
- Nothing raises out of the loop: a bad message is a ``Rejected`` passed to ``on_reject``.
- With ``pending`` (the store is a file: always, unless ``--db :memory:``), a QoS 1 message
  is acknowledged only once handled: a latent once its row in ``pending`` is committed, a
  rejected message or a status/heartbeat once counted or applied, each PUBACK in arrival
  order (``epic.central.acks``). A latent goes to the assembler at once, not after its write:
  the write gates only the PUBACK, so it adds nothing to a map's latency, and a centre
  killed before the write loses nothing (the broker sends the latent again).
  Without ``pending``, paho acknowledges on receipt, as before.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import aiomqtt

from epic.central.acks import AckLedger, manual_acks
from epic.central.pending import PendingLatents, PendingRow
from epic.central.ratelimit import RateLimitedLog
from epic.central.settings import BrokerAddress
from epic.central.validate import UNKNOWN_DEVICE, Arrival, DeviceReport, Rejected, Validator
from epic.shared.wire import FROM_EDGES, Backoff, TopicError, parse_topic, topic_filter

__all__ = ["Consumer"]

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 30.0
INCOMING_BOUND = 10_000  # aiomqtt's queue between paho's thread and our read loop
OUTBOX_BOUND = 256  # map summaries waiting for the broker


class Consumer:
    def __init__(
        self,
        address: BrokerAddress | list[BrokerAddress],
        validator: Validator,
        inbox: asyncio.Queue[Arrival],
        *,
        on_report: Callable[[DeviceReport], None],
        on_reject: Callable[[Rejected], None],
        on_message: Callable[[str], None] = lambda kind: None,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        tls_ca: str | None = None,
        pending: PendingLatents | None = None,
    ) -> None:
        # A cluster's nodes, tried in turn: the next after a failed or lost connection.
        self.addresses = address if isinstance(address, list) else [address]
        self.address = self.addresses[0]
        self._node = 0
        self.validator = validator
        self.deployment = validator.manifest.deployment
        self.inbox = inbox
        self.on_report, self.on_reject, self.on_message = on_report, on_reject, on_message
        self.client_id = client_id or f"epic-central-{self.deployment}"
        self.username, self.password, self.tls_ca = username, password, tls_ca
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.outbox_dropped = 0
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._outbox_ready = asyncio.Event()
        self._warn = RateLimitedLog(log)
        self.pending = pending
        self.ledger: AckLedger | None = None  # the current connection's, with ``pending``
        self._reader: asyncio.Task[None] | None = None
        if pending is not None:
            manual_acks(self._client(AckLedger()))  # fails now, at start, if it cannot work

    @property
    def topics(self) -> list[tuple[str, int]]:
        return [(str(topic_filter(self.deployment, kind)), 1) for kind in FROM_EDGES]

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue a message for the broker (QoS 1); never waits. A full outbox drops its
        oldest: a map summary is also in the store, so losing one here loses no map."""
        if len(self._outbox) >= OUTBOX_BOUND:
            self._outbox.popleft()
            self.outbox_dropped += 1
        self._outbox.append((topic, payload))
        self._outbox_ready.set()

    def _client(self, ledger: AckLedger | None) -> aiomqtt.Client:
        tls = None
        if self.address.tls:
            tls = ssl.create_default_context(cafile=self.tls_ca)
        client = aiomqtt.Client(
            self.address.host,
            self.address.port,
            identifier=self.client_id,
            clean_session=False,
            username=self.username,
            password=self.password,
            tls_context=tls,
            keepalive=30,
            queue_type=_counting_queue(self._overflow, ledger),
            max_queued_incoming_messages=INCOMING_BOUND,
            timeout=10,
        )
        if ledger is not None:
            ledger.send = manual_acks(client)  # before it connects: no message acked on receipt
        return client

    async def run(self) -> None:
        """Connect, read and publish until cancelled, reconnecting after any failure."""
        backoff = Backoff(BACKOFF_START_S, BACKOFF_CAP_S, jitter=False)  # one client: no jitter
        while True:
            # One ledger per connection: packet ids are the connection's, and what was not
            # acknowledged when it died comes again (DUP) on the next one.
            ledger = self.ledger = AckLedger() if self.pending is not None else None
            try:
                async with self._client(ledger) as client:
                    await client.subscribe(self.topics)
                    log.info("connected to %s as %s", self.address, self.client_id)
                    self.connected.set()
                    backoff.reset()
                    async with asyncio.TaskGroup() as tasks:
                        self._reader = tasks.create_task(
                            self._read(client, ledger), name="mqtt-read"
                        )
                        tasks.create_task(self._send(client), name="mqtt-send")
            except* (aiomqtt.MqttError, OSError) as group:
                exc = group.exceptions[0]
                was_connected = self.connected.is_set()
                self.connected.clear()
                if was_connected:
                    self.reconnects += 1
                    log.warning("lost the broker %s (%s); reconnecting", self.address, exc)
                else:
                    self._warn.warning(
                        "connect",
                        "broker %s unreachable (%s); retrying, every %.0f s at most",
                        self.address,
                        exc,
                        BACKOFF_CAP_S,
                    )
            finally:
                if ledger is not None:
                    ledger.close()
            self._node = (self._node + 1) % len(self.addresses)
            self.address = self.addresses[self._node]
            await asyncio.sleep(backoff.next_delay())

    async def stop_reading(self, wait_s: float) -> None:
        """The first step of a clean stop: read no more, and let what was read be written
        and acknowledged (``wait_s`` at most); the caller then cancels ``run``, whose
        DISCONNECT follows those PUBACKs. What was still in aiomqtt's queue is not
        acknowledged, so the broker keeps it for the next start."""
        if self._reader is not None:
            self._reader.cancel()
        if self.pending is not None and not await self.pending.flush(wait_s):
            log.warning(
                "latents read were not all written within %.0f s of the stop; the "
                "broker sends those again at the next start",
                wait_s,
            )

    async def _read(self, client: aiomqtt.Client, ledger: AckLedger | None) -> None:
        async for message in client.messages:
            ticket = None if ledger is None else ledger.claim(message.mid, message.qos)
            topic = message.topic.value
            self.on_message(_kind_of(topic))
            payload = message.payload
            if not isinstance(payload, (bytes, bytearray)):
                payload = b"" if payload is None else str(payload).encode()
            payload = bytes(payload)
            try:
                item = self.validator.message(topic, payload, bool(message.retain))
            except Rejected as rejected:
                self._handle(self.on_reject, rejected)
                item = None  # counted and dropped: nothing to keep, acknowledged in turn
            except Exception as exc:  # a validator bug must not stop the centre reading
                log.exception("validating %s failed", topic)
                self._handle(self.on_reject, Rejected("internal", UNKNOWN_DEVICE, str(exc)))
                item = None
            if isinstance(item, Arrival):
                if self.pending is not None and ledger is not None:
                    row = PendingRow(
                        item.sample_id, item.device_id, topic, payload, item.arrival_ns
                    )
                    on_durable = None if ticket is None else partial(ledger.done, ticket)
                    await self.pending.add(row, on_durable)  # acknowledged once written
                    ticket = None
                await self.inbox.put(item)
            elif item is not None:
                self._handle(self.on_report, item)
            if ledger is not None:
                ledger.done(ticket)

    @staticmethod
    def _handle(callback: Callable[[Any], None], value: Any) -> None:
        try:
            callback(value)
        except Exception:
            log.exception("handling %r failed", value)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            await self._outbox_ready.wait()
            while self._outbox:
                topic, payload = self._outbox[0]
                await client.publish(topic, payload, qos=1)
                self._outbox.popleft()  # only once the broker has it
            self._outbox_ready.clear()

    def _overflow(self, message: aiomqtt.Message) -> None:
        try:
            device = parse_topic(message.topic.value, check_ids=False).device
        except TopicError:
            device = None
        if device is None:
            device = UNKNOWN_DEVICE
        self._handle(self.on_reject, Rejected("overflow", device, "incoming queue full"))


def _kind_of(topic: str) -> str:
    """The kind a message is counted under: one the centre reads, else ``other``."""
    try:
        kind = parse_topic(topic, check_ids=False).kind
    except TopicError:
        return "other"
    return kind if kind in FROM_EDGES else "other"


def _counting_queue(
    on_overflow: Callable[[Any], None], ledger: AckLedger | None
) -> type[asyncio.Queue]:
    """aiomqtt's incoming queue, bounded, telling us what it throws away (it only logs), and
    telling the ledger of every message in the order paho received them."""

    class CountingQueue(asyncio.Queue):
        def put_nowait(self, item: Any) -> None:
            try:
                super().put_nowait(item)
            except asyncio.QueueFull:
                if ledger is not None:
                    ledger.received(item.mid, item.qos, queued=False)
                on_overflow(item)
                raise
            if ledger is not None:
                ledger.received(item.mid, item.qos, queued=True)

    return CountingQueue
