"""Manual PUBACKs (``epic.central.acks``): the ledger's order, reaching paho through aiomqtt, and
the centre's consumer against a scripted broker on a real socket: a latent's PUBACK leaves
only once its row is committed, and every PUBACK leaves in the order the PUBLISHes came
(MQTT 3.1.1 [MQTT-4.6.0-2]), a rejected message's and a heartbeat's included."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import struct
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from epic.central.acks import AckLedger, manual_acks
from epic.central.consumer import Consumer
from epic.central.pending import PendingLatents
from epic.central.settings import BrokerAddress
from epic.central.store import MapStore
from epic.central.validate import Arrival, Validator
from tests.faults.rawmqtt import packet, read_packet

from .conftest import Feed


def test_acks_leave_in_arrival_order_whatever_order_messages_are_done_in() -> None:
    sent: list[tuple[int, int]] = []
    ledger = AckLedger()
    ledger.send = lambda mid, qos: sent.append((mid, qos))
    for mid in (7, 8, 9):
        ledger.received(mid, 1, queued=True)
    ledger.received(0, 0, queued=True)  # QoS 0: nothing to acknowledge, not in the ledger
    ledger.received(10, 1, queued=False)  # the incoming queue was full: dropped, counted
    first, second, third = (ledger.claim(mid, 1) for mid in (7, 8, 9))
    assert ledger.claim(0, 0) is None
    ledger.done(third)
    ledger.done(second)
    assert sent == [] and ledger.waiting == 4  # 7 holds the others back
    ledger.done(first)
    assert sent == [(7, 1), (8, 1), (9, 1), (10, 1)] and ledger.acked == 4
    ledger.received(11, 1, queued=True)
    ticket = ledger.claim(11, 1)
    ledger.close()  # the connection died: the broker sends 11 again, with DUP
    ledger.done(ticket)
    assert sent[-1] == (10, 1)


def test_a_ledger_out_of_step_with_the_queue_says_so() -> None:
    ledger = AckLedger()
    ledger.received(1, 1, queued=True)
    with pytest.raises(RuntimeError, match="out of step: read mid 2, expected 1"):
        ledger.claim(2, 1)


def test_manual_acks_reach_paho_or_fail_loudly() -> None:
    async def main() -> None:
        client = aiomqtt.Client("127.0.0.1", 1)
        ack = manual_acks(client)
        assert client._client._manual_ack and ack == client._client.ack

    asyncio.run(main())

    class Moved:  # what a future aiomqtt might look like
        _paho = object()

    with pytest.raises(RuntimeError, match="no longer holds a paho-mqtt client"):
        manual_acks(Moved())  # type: ignore[arg-type]


class ScriptedBroker:
    """One connection's worth of a broker: CONNACK, SUBACK, then what the test sends."""

    def __init__(self) -> None:
        self.accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue(1)
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_packet(reader)  # CONNECT
        writer.write(b"\x20\x02\x00\x00")  # session not present, accepted
        first, body = await read_packet(reader)
        assert first == 0x82
        granted = bytes([1]) * 4  # the consumer's four topic filters, QoS 1
        writer.write(packet(0x90, body[:2] + granted))
        await self.accepted.put((reader, writer))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield server.sockets[0].getsockname()[1]
        finally:
            server.close()


def publish_packet(mid: int, topic: str, payload: bytes) -> bytes:
    raw = topic.encode()
    return packet(0x32, struct.pack("!H", len(raw)) + raw + struct.pack("!H", mid) + payload)


async def pubacks(reader: asyncio.StreamReader, n: int, timeout: float) -> list[int]:
    mids: list[int] = []
    async with asyncio.timeout(timeout):
        while len(mids) < n:
            first, body = await read_packet(reader)
            if first == 0x40:
                mids.append(struct.unpack("!H", body)[0])
    return mids


async def stopped(*tasks: asyncio.Task[None]) -> None:
    """Cancelled and finished (the consumer's DISCONNECT sent) before the broker side closes."""
    for task in tasks:
        task.cancel()
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_latent_is_acknowledged_once_written_and_every_ack_in_arrival_order(
    tmp_path: Path, feed: Feed
) -> None:
    db = tmp_path / "c.sqlite"
    rejected: list[str] = []
    reports: list[str] = []

    async def main() -> None:
        store = MapStore(db, "demo")
        await store.open()
        pending = PendingLatents(store, max_rows=100)
        await pending.open()
        inbox: asyncio.Queue[Arrival] = asyncio.Queue(16)
        broker = ScriptedBroker()
        async with broker.running() as port, asyncio.TaskGroup() as tasks:
            consumer = Consumer(
                BrokerAddress("127.0.0.1", port, False),
                Validator(feed.manifest, False, 4 * 1024 * 1024),
                inbox,
                on_report=lambda r: reports.append(r.device_id),
                on_reject=lambda r: rejected.append(r.reason),
                client_id="test-centre",
                pending=pending,
            )
            run = tasks.create_task(consumer.run())
            writing = tasks.create_task(pending.run())
            async with asyncio.timeout(10):
                reader, writer = await broker.accepted.get()
            # The store's thread is busy (a slow disk, a long API read): nothing is written.
            gate = threading.Event()
            busy = tasks.create_task(store.call(lambda _: gate.wait(10)))
            heartbeat = (f"epic/{feed.deployment}/heartbeat/dev-2", b'{"uptime_s": 1}')
            script = [
                feed.message(0, "dev-0"),
                (feed.topic(0, "dev-1"), b"garbage"),
                heartbeat,
                feed.message(0, "dev-3"),
            ]
            for mid, (topic, payload) in enumerate(script, start=1):
                writer.write(publish_packet(mid, topic, payload))
            async with asyncio.timeout(10):  # handed to the assembler at once...
                got = [await inbox.get(), await inbox.get()]
            assert [a.device_id for a in got] == ["dev-0", "dev-3"]
            assert rejected == ["truncated"] and reports == ["dev-2"]
            with pytest.raises(TimeoutError):  # ...but not acknowledged: 1 waits for its
                await pubacks(reader, 1, timeout=0.5)  # write, 2 and 3 wait behind it
            assert consumer.ledger is not None and consumer.ledger.waiting == 4
            gate.set()
            assert await pubacks(reader, 4, timeout=10) == [1, 2, 3, 4]
            with sqlite3.connect(db) as conn:
                rows = conn.execute("SELECT device_id FROM pending ORDER BY seq").fetchall()
            assert rows == [("dev-0",), ("dev-3",)]
            await busy
            await stopped(run, writing)
            writer.close()
        await store.close()

    asyncio.run(main())


def test_without_a_pending_table_paho_acknowledges_on_receipt(feed: Feed) -> None:
    """``--db :memory:``: nothing would survive a crash, so nothing is waited for."""

    async def main() -> None:
        broker = ScriptedBroker()
        inbox: asyncio.Queue[Arrival] = asyncio.Queue(16)
        async with broker.running() as port, asyncio.TaskGroup() as tasks:
            consumer = Consumer(
                BrokerAddress("127.0.0.1", port, False),
                Validator(feed.manifest, False, 4 * 1024 * 1024),
                inbox,
                on_report=lambda r: None,
                on_reject=lambda r: None,
                client_id="test-centre",
            )
            run = tasks.create_task(consumer.run())
            async with asyncio.timeout(10):
                reader, writer = await broker.accepted.get()
            writer.write(publish_packet(1, *feed.message(0, "dev-0")))
            assert await pubacks(reader, 1, timeout=10) == [1]
            assert consumer.ledger is None
            await stopped(run)
            writer.close()

    asyncio.run(main())
