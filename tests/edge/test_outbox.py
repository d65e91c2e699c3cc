"""The disk outbox: order, acknowledgement, the size bound, and surviving a restart."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from epic.edge.outbox import Outbox
from epic.shared.errors import DataError, OptionError

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(20):
            return await coro

    return asyncio.run(bounded())


def test_fifo_peek_delete_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"

    async def first() -> None:
        async with await Outbox.open(path, 10_000) as box:
            assert box.empty.is_set()
            for i in range(5):
                await box.append(f"t/{i}", bytes([i]) * 10, created_ns=i)
            assert (box.depth, box.bytes, box.empty.is_set()) == (5, 50, False)
            rows = await box.peek(2)
            assert [r.topic for r in rows] == ["t/0", "t/1"]
            await box.delete([r.id for r in rows])
            assert (box.depth, box.bytes) == (3, 30)

    async def second() -> None:  # a new daemon on the same file
        async with await Outbox.open(path, 10_000) as box:
            assert (box.depth, box.bytes) == (3, 30)
            rows = await box.peek(10)
            assert [r.topic for r in rows] == ["t/2", "t/3", "t/4"]
            assert rows[0].payload == b"\x02" * 10 and rows[0].created_ns == 2
            await box.append("t/5", b"x", created_ns=5)
            rows = await box.peek(10)
            assert [r.topic for r in rows][-1] == "t/5"  # after the old ones
            await box.delete([r.id for r in rows])
            assert box.empty.is_set() and box.depth == 0

    run(first())
    run(second())


def test_bound_drops_oldest_first_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "small.sqlite"

    async def fill() -> None:
        async with await Outbox.open(path, 100) as box:
            for i in range(3):
                assert await box.append(f"t/{i}", b"a" * 30, created_ns=i) == 0
            # 120 B would pass the bound: the oldest goes, each time.
            assert await box.append("t/3", b"b" * 30, created_ns=3) == 1
            assert await box.append("t/4", b"b" * 30, created_ns=4) == 1
            topics = [r.topic for r in await box.peek(10)]
            assert topics == ["t/2", "t/3", "t/4"]
            assert (box.depth, box.bytes, box.dropped) == (3, 90, 2)
            # Room for a bigger one is made by dropping as many as it takes.
            assert await box.append("t/5", b"c" * 70, created_ns=5) == 2
            assert [r.topic for r in await box.peek(10)] == ["t/4", "t/5"]
            assert (box.depth, box.bytes, box.dropped) == (2, 100, 4)
            # An envelope larger than the whole outbox is dropped, the queue kept.
            assert await box.append("huge", b"d" * 101, created_ns=6) == 1
            assert (box.depth, box.bytes, box.dropped) == (2, 100, 5)

    async def reopen() -> None:
        async with await Outbox.open(path, 100) as box:
            assert (box.depth, box.bytes, box.dropped) == (2, 100, 5)

    run(fill())
    run(reopen())


def test_unusable_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match="not a usable outbox"):
        run(Outbox.open(path, 1000))
    with pytest.raises(OptionError, match="must be positive"):
        run(Outbox.open(tmp_path / "x.sqlite", 0))


def test_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite"

    async def make() -> None:
        async with await Outbox.open(path, 1000) as box:
            await box.append("t", b"x", 0)

    run(make())
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
