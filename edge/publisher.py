"""The publisher: one MQTT connection at a time, drained from the outbox, in order.

Each connection: publish the retained ``online`` status (its Last Will says ``offline``),
then three tasks until the connection dies or the daemon stops: drain the outbox (a window
of envelopes at QoS 1, each deleted after its PUBACK), publish a heartbeat, and watch for
the disconnect. Like MQTT's own keepalive, a heartbeat is due only after ``heartbeat_s`` of
silence: a latent already proves the device alive (the centre counts either), so while
latents flow the counters go out every ``stats_s`` instead, and a heartbeat between those
carries only what changed (``epic.edge.health``): the uplink carries almost nothing but latents.

A lost connection or a refused connect waits an exponential backoff with jitter, then
connects again with a fresh client; what the outbox holds then goes out oldest first. On
stop it says ``offline`` (reason ``shutdown``) and disconnects cleanly, so the broker does
not fire the Will.

A PUBACK lost with the connection means that envelope is sent again after reconnecting:
delivery is at least once, and the centre ignores duplicates (docs/architecture.md,
"Assembler rules").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable

import aiomqtt

from epic.edge.config import EdgeConfig
from epic.edge.connection import BrokerEndpoint
from epic.edge.health import (
    EdgeStats,
    StatusInfo,
    encode_heartbeat,
    heartbeat_figures,
    status_payload,
)
from epic.edge.outbox import Outbox, OutboxRow
from epic.shared.wire import Backoff, heartbeat_topic, status_topic

__all__ = ["Publisher"]

log = logging.getLogger(__name__)
_GOODBYE_TIMEOUT_S = 2.0


class Publisher:
    def __init__(
        self,
        config: EdgeConfig,
        info: StatusInfo,
        outbox: Outbox,
        stats: EdgeStats,
        skipped: Callable[[], int] = lambda: 0,
    ) -> None:
        self.config = config
        self.info = info
        self.outbox = outbox
        self.stats = stats
        self._skipped = skipped
        self.connected = asyncio.Event()
        self.status_topic = str(status_topic(info.deployment, info.device_id))
        self.heartbeat_topic = str(heartbeat_topic(info.deployment, info.device_id))
        self.identifier = f"edge-{info.deployment}-{info.device_id}"
        self._tls = config.broker.tls_context()
        self._last_sent = -math.inf  # monotonic time of the last acknowledged publish

    def _client(self, node: BrokerEndpoint) -> aiomqtt.Client:
        will = aiomqtt.Will(
            self.status_topic, status_payload(self.info, False, "lost"), qos=1, retain=True
        )
        return node.client(
            self.identifier, will, keepalive=self.config.keepalive_s, tls_context=self._tls
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, publish and reconnect until ``stop`` is set."""
        backoff = Backoff(self.config.backoff_min_s, self.config.backoff_max_s)
        attempt = 0  # a cluster's nodes are tried in turn (BrokerEndpoint.node)
        while not stop.is_set():
            node = self.config.broker.node(attempt)
            where = node.display
            session = False
            try:
                async with self._client(node) as client:
                    session = True
                    backoff.reset()
                    self.stats.connects += 1
                    self.stats.reconnects = self.stats.connects - 1
                    log.info(
                        "connected to %s as %s (outbox %d envelopes, %d B)",
                        where,
                        self.identifier,
                        self.outbox.depth,
                        self.outbox.bytes,
                    )
                    self.connected.set()
                    await client.publish(
                        self.status_topic, status_payload(self.info, True), qos=1, retain=True
                    )
                    await self._session(client, stop)
                    await self._goodbye(client)
                    return
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                attempt += 1
                if session:
                    log.warning(
                        "disconnected from %s: %s (outbox %d envelopes)",
                        where,
                        exc.__cause__ or exc,
                        self.outbox.depth,
                    )
                else:
                    self.stats.connect_failures += 1
                delay = backoff.next_delay()
                if not session:
                    log.warning("cannot reach %s: %s; retrying in %.1f s", where, exc, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
            finally:
                self.connected.clear()

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Run until stop (returns) or until the connection fails (raises MqttError)."""
        tasks = [
            asyncio.create_task(self._watch(client), name="mqtt-watch"),
            asyncio.create_task(self._drain(client), name="outbox-drain"),
            asyncio.create_task(self._heartbeat(client), name="heartbeat"),
            asyncio.create_task(stop.wait(), name="stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _watch(self, client: aiomqtt.Client) -> None:
        # We subscribe to nothing: the iterator only ends, with MqttError, on a disconnect.
        async for _ in client.messages:
            pass

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            rows = await self.outbox.peek(self.config.window)
            if not rows:
                self.outbox.changed.clear()
                if self.outbox.depth == 0:  # checked after clearing: no lost wake-up
                    await self.outbox.changed.wait()
                continue
            await self._send(client, rows)

    async def _send(self, client: aiomqtt.Client, rows: list[OutboxRow]) -> None:
        acked: list[OutboxRow] = []

        async def one(row: OutboxRow) -> None:
            await client.publish(row.topic, row.payload, qos=1)
            acked.append(row)

        try:
            # Tasks start in order, so the publishes leave in outbox order.
            results = await asyncio.gather(*(one(r) for r in rows), return_exceptions=True)
        finally:
            # Even when cancelled by a disconnect: what was acknowledged must not go again.
            await asyncio.shield(self.outbox.delete([r.id for r in acked]))
            self.stats.envelopes_sent += len(acked)
            if acked:
                self._last_sent = time.monotonic()
            self.stats.bytes_sent += sum(len(r.payload) for r in acked)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        """Every figure at once, again ``heartbeat_s`` later (the first samples' encode
        times: a monitor would otherwise show none for a minute), then every ``stats_s``;
        between them, after ``heartbeat_s`` without a publish, ``time_ns`` and what changed."""
        last_full = -math.inf
        fulls = 0
        sent: dict | None = None  # the figures as the centre now has them
        while True:
            now = time.monotonic()
            full_at = last_full + self.config.stats_s
            due = min(self._last_sent + self.config.heartbeat_s, full_at)
            if now < due:
                # Woken early or late alike: the due time is worked out again from what was
                # sent meanwhile.
                await asyncio.sleep(due - now)
                continue
            figures = heartbeat_figures(
                self.info.device_id,
                self.stats,
                self.outbox.depth,
                self.outbox.bytes,
                self.outbox.dropped,
                self._skipped(),
            )
            full = now >= full_at
            payload = encode_heartbeat(figures, None if full else sent)
            await client.publish(self.heartbeat_topic, payload, qos=0)
            sent = figures
            self._last_sent = time.monotonic()
            if full:
                fulls += 1
                last_full = self._last_sent
                if fulls == 1:  # the second one soon after, then every stats_s
                    last_full += self.config.heartbeat_s - self.config.stats_s

    async def _goodbye(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(
                self.status_topic,
                status_payload(self.info, False, "shutdown"),
                qos=1,
                retain=True,
                timeout=_GOODBYE_TIMEOUT_S,
            )
        log.info("said offline; disconnecting")
