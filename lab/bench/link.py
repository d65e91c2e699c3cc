"""Link emulator: a TCP proxy that gives one edge's uplink a cellular (or Wi-Fi) profile.

Linux ``tc netem`` needs root, which the benchmark machines do not give, so the link is
modelled in user space: the edge connects to this proxy instead of the broker, and the proxy
forwards the byte stream with the profile's timing. It terminates TCP on both sides, so what
it shapes is the *stream* the two ends see, not packets.

What is modelled (uplink: edge -> broker)
  * Bandwidth: a serializer per connection (a token bucket with no burst allowance): a chunk
    leaves the link ``bytes * 8 / rate`` after the previous one, so each edge has its own
    uplink of ``rate_bps``.
  * Delay: every chunk is delivered no earlier than the moment its last byte was serialized
    plus the one-way delay, in order. Chunks wait in a scheduled delivery queue, so the link
    is pipelined: a 50 ms delay does not lower the throughput.
  * Loss, part 1 (throughput): TCP loses no bytes, it retransmits and backs off. Its
    steady-state throughput under random loss is bounded by Mathis et al. (1997),
    ``rate <= MSS / RTT * C / sqrt(p)``, ``C = sqrt(3/2)``, with MSS = 1460 B and
    RTT = 2 x one-way delay. The uplink runs at ``min(rate_bps, Mathis rate)``. For ``4g``
    (0.5 %, RTT 100 ms) that is 1460 * 8 / 0.1 * 1.2247 / 0.0707 = 2.02 Mbit/s, far below
    the 15 Mbit/s radio rate: this is why raw uploads are slow on a lossy cellular link.
  * Loss, part 2 (latency): so that small messages feel loss too, each 1460-byte segment is
    lost with probability ``p`` (independently, from an RNG seeded per connection), and the
    chunk holding it is delivered one retransmission timeout late. Linux's RTO for a steady
    RTT is ``srtt + max(4 * rttvar, TCP_RTO_MIN)`` = RTT + 200 ms (300 ms for ``4g``).
    Later chunks cannot overtake it (TCP delivers in order), but the serializer keeps
    sending behind it, as with fast retransmit and SACK, so a bulk transfer is not slowed
    twice: part 1 already accounts for its throughput.
  * Downlink (broker -> edge, e.g. PUBACKs): the same one-way delay, no loss, and no rate cap
    unless ``downlink_rate_bps`` is set.

What is not modelled, and why
  * Congestion-window slow start (at connection start and, on Linux, after an idle period
    longer than the RTO): it would make the first round trips of each burst slower. Leaving
    it out flatters bursty raw uploads, i.e. it favours the centralized baseline.
  * Queueing at the base station and cross traffic: each edge's uplink is private here.
  * Jitter, HARQ retransmissions, RRC promotion delay and loss on the downlink.

The proxy counts the bytes it delivers in each direction: these are the benchmark's wire
bytes (payloads plus MQTT framing, since it sits on the TCP stream; TCP/IP headers are not
seen). Memory is bounded: a direction stops reading from its source while more than
``max_queue_bytes`` wait for delivery, so a fast sender is held back by TCP flow control.

Use ``async with LinkProxy(...) as link:`` (several in one event loop), or one process per
edge: ``python -m epic.lab.bench.link --profile 4g --listen 127.0.0.1:0 --target 127.0.0.1:1883``
prints ``listening on 127.0.0.1:PORT``, and on SIGTERM or SIGINT a ``stats {...}`` JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import random
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from epic.lab.bench.link_profile import MSS_BYTES, PROFILES, LinkProfile

__all__ = ["LinkProxy", "LinkStats"]

log = logging.getLogger(__name__)

Direction = Literal["up", "down"]

READ_BYTES = 64 * 1024
QUANTUM_S = 0.002  # a chunk is split into pieces of at most ~2 ms of serialization
CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class LinkStats:
    """What a proxy has carried since it started (all its connections together)."""

    profile: str
    bytes_up: int
    bytes_down: int
    connections: int
    open_connections: int
    lost_segments: int  # uplink segments that cost a retransmission timeout
    peak_queue_bytes: int  # the largest backlog any one direction held


@dataclass
class _Tally:
    bytes: int = 0
    lost_segments: int = 0
    peak_queue_bytes: int = 0


class _Schedule:
    """When each piece of one direction's stream is delivered (the model; no I/O)."""

    def __init__(
        self,
        rate_bps: float | None,
        delay_s: float,
        loss: float,
        rto_s: float,
        rng: random.Random,
        tally: _Tally,
    ) -> None:
        self._rate = rate_bps
        self._delay = delay_s
        self._loss = loss
        self._rto = rto_s
        self._rng = rng
        self._quantum = (
            max(MSS_BYTES, int(rate_bps * QUANTUM_S / 8) // MSS_BYTES * MSS_BYTES)
            if rate_bps
            else READ_BYTES
        )
        self._free_at = -math.inf  # when the serializer finishes what it has
        self._last_due = -math.inf  # delivery times never go backwards: TCP is in order
        self._tally = tally

    def plan(self, now: float, nbytes: int) -> list[tuple[float, int]]:
        """``(due time, length)`` of the pieces of ``nbytes`` read at ``now``, in order."""
        pieces = []
        clock = max(now, self._free_at)
        left = nbytes
        while left > 0:
            size = min(self._quantum, left)
            left -= size
            if self._rate:
                clock += size * 8 / self._rate
            due = clock + self._delay
            if self._loss > 0:
                # A short read is a segment of its own, as a small MQTT packet is on the wire.
                segments = -(-size // MSS_BYTES)
                lost = sum(self._rng.random() < self._loss for _ in range(segments))
                if lost:
                    self._tally.lost_segments += lost
                    due += self._rto
            self._last_due = max(self._last_due, due)
            pieces.append((self._last_due, size))
        self._free_at = clock
        return pieces

    def end(self, now: float) -> float:
        """When the end of the stream (a FIN) arrives, behind everything before it."""
        self._last_due = max(self._last_due, max(now, self._free_at) + self._delay)
        return self._last_due


class _Pipe:
    """One direction of one connection: read, schedule, deliver on time; EOF passes through."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        schedule: _Schedule,
        tally: _Tally,
        max_queue_bytes: int,
        on_bytes: Callable[[int], None],
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._schedule = schedule
        self._tally = tally
        self._max = max_queue_bytes
        self._on_bytes = on_bytes
        self._queue: deque[tuple[float, bytes | None]] = deque()  # None: end of stream
        self._queued = 0
        self._has_data = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._receive())
            tasks.create_task(self._deliver())

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._has_room.wait()  # backpressure: the source's TCP window closes
            data = await self._reader.read(READ_BYTES)
            now = loop.time()
            if not data:
                self._queue.append((self._schedule.end(now), None))
                self._has_data.set()
                return
            offset = 0
            for due, size in self._schedule.plan(now, len(data)):
                self._queue.append((due, data[offset : offset + size]))
                offset += size
            self._queued += len(data)
            self._tally.peak_queue_bytes = max(self._tally.peak_queue_bytes, self._queued)
            if self._queued >= self._max:
                self._has_room.clear()
            self._has_data.set()

    async def _deliver(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._has_data.clear()
                await self._has_data.wait()
                continue
            wait = self._queue[0][0] - loop.time()
            if wait > 0:
                # Only the head matters: what is queued behind it is due no earlier.
                await asyncio.sleep(wait)
                continue
            now = loop.time()
            batch: list[bytes] = []
            while self._queue and self._queue[0][0] <= now and self._queue[0][1] is not None:
                batch.append(self._queue.popleft()[1])  # type: ignore[arg-type]
            if batch:
                data = b"".join(batch)
                self._writer.write(data)
                await self._writer.drain()  # a slow reader holds the queue, hence the source
                self._queued -= len(data)
                self._tally.bytes += len(data)
                self._on_bytes(len(data))
                if self._queued < self._max:
                    self._has_room.set()
            elif self._queue and self._queue[0][1] is None:
                self._queue.popleft()
                if self._writer.can_write_eof():
                    self._writer.write_eof()  # half-close: the other direction goes on
                return


class LinkProxy:
    """``async with LinkProxy(...) as link``: listen on ``link.port``, forward each connection
    to the target through ``profile``; ``link.stats()`` counts what it carried."""

    def __init__(
        self,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        target_host: str = "127.0.0.1",
        target_port: int = 1883,
        profile: LinkProfile | str = "none",
        seed: int = 0,
        *,
        max_queue_bytes: int = 1 << 20,
        on_bytes: Callable[[Direction, int], None] | None = None,
    ) -> None:
        if max_queue_bytes <= 0:
            raise ValueError(f"max_queue_bytes must be positive: {max_queue_bytes}")
        self.profile = profile if isinstance(profile, LinkProfile) else LinkProfile.named(profile)
        self.listen_host = listen_host
        self._listen_port = listen_port
        self.target = (target_host, target_port)
        self.seed = seed
        self._max_queue = max_queue_bytes
        self._on_bytes = on_bytes
        self._up = _Tally()
        self._down = _Tally()
        self._accepted = 0
        self._connections: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._closing = False

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the link proxy is not listening yet")
        return self._server.sockets[0].getsockname()[1]

    @property
    def bytes_up(self) -> int:
        return self._up.bytes

    @property
    def bytes_down(self) -> int:
        return self._down.bytes

    def stats(self) -> LinkStats:
        return LinkStats(
            profile=self.profile.name,
            bytes_up=self._up.bytes,
            bytes_down=self._down.bytes,
            connections=self._accepted,
            open_connections=len(self._connections),
            lost_segments=self._up.lost_segments,
            peak_queue_bytes=max(self._up.peak_queue_bytes, self._down.peak_queue_bytes),
        )

    async def __aenter__(self) -> LinkProxy:
        self._server = await asyncio.start_server(
            self._serve, self.listen_host, self._listen_port, limit=READ_BYTES
        )
        rate = self.profile.effective_rate_bps
        log.info(
            "link %s: %s:%d -> %s:%d, uplink %s bit/s, %.1f ms one way, loss %.2f %%",
            self.profile.name,
            self.listen_host,
            self.port,
            *self.target,
            f"{rate:.3g}" if rate else "uncapped",
            self.profile.delay_s * 1e3,
            self.profile.loss * 100,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, close every open connection (both sides), wait for them."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        pending = set(self._connections)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        index = self._accepted
        self._accepted += 1
        writers = [writer]
        try:
            await self._connect_and_forward(index, reader, writer, writers)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # Our own shutdown. Python 3.11's start_server logs a handler that ends cancelled
            # as an error (it calls task.exception()), so end quietly instead.
        finally:
            self._connections.discard(task)
            await _close(writers)

    async def _connect_and_forward(
        self,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        writers: list[asyncio.StreamWriter],
    ) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, TimeoutError) as exc:
            log.warning("link %s: cannot reach %s:%d: %s", self.profile.name, *self.target, exc)
            return
        writers.append(up_writer)
        try:
            await self._forward(index, reader, writer, up_reader, up_writer)
        except* OSError as group:  # a reset or broken pipe on either side ends both
            reason = group.exceptions[0]
            log.info("link %s: connection %d dropped: %s", self.profile.name, index, reason)

    async def _forward(
        self,
        index: int,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        server_reader: asyncio.StreamReader,
        server_writer: asyncio.StreamWriter,
    ) -> None:
        p = self.profile
        rng = random.Random(f"{self.seed}/{index}")  # repeatable per connection
        up = _Schedule(p.effective_rate_bps, p.delay_s, p.loss, p.rto_s, rng, self._up)
        down = _Schedule(p.downlink_rate_bps, p.delay_s, 0.0, 0.0, rng, self._down)
        up_pipe = _Pipe(client_reader, server_writer, up, self._up, self._max_queue, self._count_up)
        down_pipe = _Pipe(
            server_reader, client_writer, down, self._down, self._max_queue, self._count_down
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(up_pipe.run())
            tasks.create_task(down_pipe.run())

    def _count_up(self, n: int) -> None:
        if self._on_bytes is not None:
            self._on_bytes("up", n)

    def _count_down(self, n: int) -> None:
        if self._on_bytes is not None:
            self._on_bytes("down", n)


async def _close(writers: Sequence[asyncio.StreamWriter]) -> None:
    for writer in writers:
        writer.close()
    for writer in writers:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            writer.transport.abort()  # the peer is gone or stuck: drop what is unsent


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m epic.lab.bench.link",
        description="Forward TCP connections through an emulated link (see the module doc).",
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="4g")
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0), help="HOST:PORT")
    parser.add_argument("--target", type=_address, required=True, help="HOST:PORT")
    parser.add_argument("--seed", type=int, default=0, help="loss RNG seed")
    parser.add_argument("--rate-mbit", type=float, help="override the uplink rate, Mbit/s")
    parser.add_argument("--delay-ms", type=float, help="override the one-way delay, ms")
    parser.add_argument("--loss", type=float, help="override the uplink loss probability")
    parser.add_argument("--stats-file", type=Path, help="also write the final stats here")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _profile(args: argparse.Namespace) -> LinkProfile:
    profile = LinkProfile.named(args.profile)
    changes: dict[str, float] = {}
    if args.rate_mbit is not None:
        changes["rate_bps"] = args.rate_mbit * 1e6
    if args.delay_ms is not None:
        changes["delay_s"] = args.delay_ms / 1e3
    if args.loss is not None:
        changes["loss"] = args.loss
    if not changes:
        return profile
    return dataclasses.replace(profile, name=f"{profile.name}-custom", **changes)


async def _run(args: argparse.Namespace, profile: LinkProfile) -> LinkStats:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)  # the handler only sets a flag
    listen: tuple[str, int] = args.listen  # HOST:PORT, as _address reads it
    target: tuple[str, int] = args.target
    async with LinkProxy(*listen, *target, profile, args.seed) as link:
        print(f"listening on {args.listen[0]}:{link.port}", flush=True)
        await stop.wait()
    return link.stats()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        profile = _profile(args)
        stats = asyncio.run(_run(args, profile))
    except (ValueError, OSError) as exc:
        print(f"link: error: {exc}", file=sys.stderr)
        return 2
    line = json.dumps(dataclasses.asdict(stats))
    print(f"stats {line}", flush=True)
    if args.stats_file is not None:
        tmp = args.stats_file.with_suffix(args.stats_file.suffix + ".tmp")
        tmp.write_text(line + "\n")
        tmp.replace(args.stats_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
