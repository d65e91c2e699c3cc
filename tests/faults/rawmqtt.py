"""A few MQTT 3.1.1 packets by hand, for a client that misbehaves on purpose (never acks,
drops its connection mid-flow): no client library lets itself be that rude."""

from __future__ import annotations

import asyncio
import struct

__all__ = ["RawClient", "packet", "read_packet"]


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack("!H", len(raw)) + raw


def packet(first: int, body: bytes) -> bytes:
    """One MQTT packet: fixed header byte, remaining length, body."""
    return bytes([first]) + _length(len(body)) + body


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(fixed header byte, body) of the next packet on ``reader``."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            return first, await reader.readexactly(length)


class RawClient:
    """One TCP connection speaking just enough MQTT: connect, subscribe, read a PUBLISH."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        client_id: str,
        *,
        clean: bool,
        timeout: float = 5.0,
        username: str | None = None,
        password: str | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> RawClient:
        """CONNECT (MQTT 3.1.1); ``will``: (topic, payload), QoS 1, not retained."""
        flags = 0x02 if clean else 0x00
        payload = _text(client_id)
        if will is not None:
            flags |= 0x04 | (1 << 3)
            payload += _text(will[0]) + struct.pack("!H", len(will[1])) + will[1]
        if username is not None:
            flags |= 0x80
            payload += _text(username)
        if password is not None:
            flags |= 0x40
            payload += _text(password)
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            body = _text("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + payload
            writer.write(packet(0x10, body))
            first, payload = await read_packet(reader)
        if first >> 4 != 2 or payload[1] != 0:
            raise ConnectionError(f"CONNACK refused: {payload!r}")
        return cls(reader, writer)

    async def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> None:
        self.writer.write(packet(0x82, struct.pack("!H", 1) + _text(topic) + bytes([qos])))
        async with asyncio.timeout(timeout):
            first, payload = await read_packet(self.reader)
        if first >> 4 != 9 or payload[2] == 0x80:
            raise ConnectionError(f"SUBACK refused: {payload!r}")

    async def next_publish(self, timeout: float = 5.0) -> tuple[str, bytes, int]:
        """(topic, payload, packet id) of the next PUBLISH; it is *not* acknowledged."""
        async with asyncio.timeout(timeout):
            while True:
                first, body = await read_packet(self.reader)
                if first >> 4 == 3:
                    break
        (n,) = struct.unpack("!H", body[:2])
        topic = body[2 : 2 + n].decode()
        qos = (first >> 1) & 3
        at = 2 + n
        packet_id = struct.unpack("!H", body[at : at + 2])[0] if qos else 0
        return topic, body[at + (2 if qos else 0) :], packet_id

    def drop(self) -> None:
        """Vanish without DISCONNECT or PUBACK: a process killed mid-flow."""
        self.writer.transport.abort()
