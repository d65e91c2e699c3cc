"""The link emulator as a TCP proxy: data intact and in order, exact byte counts, bounded
memory under a stalled receiver, clean shutdown from either side, and its command line."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import sys
from pathlib import Path

import pytest

from epic.lab.bench.link import READ_BYTES, LinkProxy
from epic.lab.bench.link_profile import LinkProfile
from tests.lab.bench.tcp import Sink, wait_until

REPO = Path(__file__).resolve().parents[3]


def test_many_chunks_arrive_intact_in_order_and_counted_exactly_both_ways() -> None:
    # Lossy enough that chunks are held for a retransmission timeout and others queue behind.
    profile = LinkProfile("lossy", rate_bps=None, delay_s=0.001, loss=0.02)
    rng = random.Random(5)
    chunks = [rng.randbytes(rng.randint(1, 20_000)) for _ in range(200)]
    data = b"".join(chunks)
    counted = {"up": 0, "down": 0}

    def count(direction: str, n: int) -> None:
        counted[direction] += n

    async def main() -> tuple[bytes, bytes, int]:
        async with (
            asyncio.timeout(30),
            Sink(echo=True) as sink,
            LinkProxy(
                "127.0.0.1", 0, "127.0.0.1", sink.port, profile, seed=2, on_bytes=count
            ) as link,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", link.port)

            async def send() -> None:
                for chunk in chunks:
                    writer.write(chunk)
                    await writer.drain()
                writer.write_eof()

            sending = asyncio.create_task(send())
            echoed = await reader.read()  # until the sink's close comes back through
            await sending
            writer.close()
            await wait_until(lambda: link.stats().open_connections == 0)
            stats = link.stats()
        assert (stats.bytes_up, stats.bytes_down) == (len(data), len(data))
        return sink.received(), echoed, stats.lost_segments

    at_sink, echoed, lost = asyncio.run(main())
    digest = hashlib.sha256(data).hexdigest()
    assert hashlib.sha256(at_sink).hexdigest() == digest
    assert hashlib.sha256(echoed).hexdigest() == digest
    assert counted == {"up": len(data), "down": len(data)}
    assert lost > 0


def test_a_stalled_receiver_holds_the_sender_back_with_bounded_memory() -> None:
    limit = 256 * 1024

    async def main() -> None:
        async with asyncio.timeout(30), Sink(rcvbuf=64 * 1024) as sink:
            sink.reading.clear()  # the receiver reads nothing for now
            async with LinkProxy(
                "127.0.0.1", 0, "127.0.0.1", sink.port, "none", max_queue_bytes=limit
            ) as link:
                reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024
                )
                rng = random.Random(1)
                sent = hashlib.sha256()
                total = 0
                blocked = False
                while total < 256 << 20:  # far more than any buffer on the way could hold
                    block = rng.randbytes(READ_BYTES)
                    writer.write(block)
                    sent.update(block)
                    total += len(block)
                    try:
                        async with asyncio.timeout(0.5):
                            await writer.drain()
                    except TimeoutError:
                        blocked = True
                        break
                assert blocked, f"{total} bytes went in without the sender ever being held"
                # The proxy held at most its limit plus one read; the rest waits in kernels.
                assert limit <= link.stats().peak_queue_bytes <= limit + READ_BYTES
                sink.reading.set()
                await writer.drain()
                writer.write_eof()
                await wait_until(lambda: sink.eof.is_set())
                assert sink.total == total == link.stats().bytes_up
                assert hashlib.sha256(sink.received()).hexdigest() == sent.hexdigest()
                assert await reader.read() == b""  # the sink's close came back as EOF
                writer.close()

    asyncio.run(main())


def test_when_the_client_closes_the_target_gets_everything_then_eof() -> None:
    profile = LinkProfile("test", rate_bps=50e6, delay_s=0.02, loss=0.0)

    async def main() -> None:
        async with (
            asyncio.timeout(10),
            Sink() as sink,
            LinkProxy("127.0.0.1", 0, "127.0.0.1", sink.port, profile) as link,
        ):
            _, writer = await asyncio.open_connection("127.0.0.1", link.port)
            writer.write(b"last words")
            writer.close()  # a full close, with data still on the emulated link
            await writer.wait_closed()
            await sink.eof.wait()
            assert sink.received() == b"last words"
            await wait_until(lambda: link.stats().open_connections == 0)
            assert link.stats().connections == 1

    asyncio.run(main())


def test_when_the_target_closes_the_client_gets_everything_then_eof() -> None:
    async def greet_and_close(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello, and goodbye")
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with asyncio.timeout(10):
            server = await asyncio.start_server(greet_and_close, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            async with LinkProxy("127.0.0.1", 0, "127.0.0.1", port, "4g") as link:
                reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
                assert await reader.read() == b"hello, and goodbye"  # then EOF
                writer.close()
                await wait_until(lambda: link.stats().open_connections == 0)
                assert link.stats().bytes_down == len(b"hello, and goodbye")
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_an_unreachable_target_closes_the_client_and_the_proxy_goes_on() -> None:
    async def main() -> None:
        with socket.socket() as unused:  # a port nobody listens on
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
            async with asyncio.timeout(10):
                async with LinkProxy("127.0.0.1", 0, "127.0.0.1", port, "wifi") as link:
                    for _ in range(2):
                        reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
                        assert await reader.read() == b""
                        writer.close()
                    await wait_until(lambda: link.stats().open_connections == 0)
                    assert link.stats().connections == 2

    asyncio.run(main())


def test_closing_the_proxy_closes_open_connections_on_both_sides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with asyncio.timeout(10), Sink() as sink:
            link = LinkProxy("127.0.0.1", 0, "127.0.0.1", sink.port, "4g")
            async with link:
                reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
                writer.write(b"x" * 100_000)  # some of it still on the emulated link
                await wait_until(lambda: link.stats().open_connections == 1 and sink.total > 0)
            assert link.stats().open_connections == 0
            assert await reader.read() == b""
            await sink.eof.wait()
            writer.close()
            running = [t.get_coro().__qualname__ for t in asyncio.all_tasks()]  # type: ignore[union-attr]
            assert not [name for name in running if name.startswith(("LinkProxy", "_Pipe"))]

    asyncio.run(main())
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text


def test_the_command_line_prints_its_port_and_on_sigterm_its_stats(tmp_path: Path) -> None:
    async def main() -> None:
        async with asyncio.timeout(30), Sink(echo=True) as sink:
            proc = await asyncio.create_subprocess_exec(
                *[sys.executable, "-m", "epic.lab.bench.link", "--profile", "wifi"],
                *["--listen", "127.0.0.1:0", "--target", f"127.0.0.1:{sink.port}"],
                *["--stats-file", str(tmp_path / "stats.json")],
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdout is not None
            try:
                line = (await proc.stdout.readline()).decode()
                host, port = line.removeprefix("listening on ").strip().rsplit(":", 1)
                assert line.startswith("listening on ") and host == "127.0.0.1", line
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"z" * 1000)
                assert await reader.readexactly(1000) == b"z" * 1000
                writer.close()
                proc.terminate()
                out = (await proc.stdout.read()).decode()
                assert await proc.wait() == 0
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        stats = json.loads(out.removeprefix("stats "))
        assert (stats["profile"], stats["bytes_up"], stats["bytes_down"]) == ("wifi", 1000, 1000)
        assert json.loads((tmp_path / "stats.json").read_text()) == stats

    asyncio.run(main())


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--loss", "1.5"], "loss must be a probability"),
        (["--listen", "127.0.0.1:1", "--delay-ms", "-3"], "delay_s must be >= 0"),
    ],
)
def test_the_command_line_refuses_bad_values_in_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from epic.lab.bench.link import main

    assert main(["--target", "127.0.0.1:1883", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("link: error: ") and fragment in err[0], err
