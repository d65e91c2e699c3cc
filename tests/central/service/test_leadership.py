"""Who is the active centre (``epic.central.leadership``), on a real PostgreSQL server: one
holder per deployment, a standby that takes over when the holder goes, deployments apart,
and a holder that loses its server stops instead of running beside another."""

from __future__ import annotations

import asyncio

import pytest

from epic.central import leadership
from epic.central.leadership import Leadership, LostLeadership, lock_key
from tests.support.postgres import PostgresServer


def test_lock_keys_are_stable_and_apart() -> None:
    assert lock_key("north-1") == lock_key("north-1") != lock_key("north-2")
    assert -(2**63) <= lock_key("north-1") < 2**63


def test_one_active_centre_a_deployment_and_the_standby_takes_over(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leadership, "POLL_S", 0.05)

    async def main() -> None:
        first, second = Leadership(postgres_url, "north-1"), Leadership(postgres_url, "north-1")
        other = Leadership(postgres_url, "north-2")
        assert await first.acquire() is False  # nobody before it: no takeover
        assert await asyncio.wait_for(other.acquire(), 5) is False  # another deployment
        waits: list[str] = []
        standby = asyncio.create_task(second.acquire(on_standby=lambda: waits.append("standby")))
        await asyncio.sleep(0.5)
        assert not standby.done() and waits == ["standby"] and not second.held
        await first.release()
        assert await asyncio.wait_for(standby, 5) is True and second.held
        await second.release()
        await other.release()

    asyncio.run(main())


def test_a_holder_that_loses_its_server_stops(
    postgres_server: PostgresServer, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leadership, "WATCH_S", 0.05)

    async def main() -> None:
        holder = Leadership(postgres_url, "north-1")
        await holder.acquire()
        watching = asyncio.create_task(holder.watch())
        await asyncio.sleep(0.2)
        assert not watching.done()
        postgres_server.stop("fast")
        try:
            with pytest.raises(LostLeadership, match="another centre may be active"):
                await asyncio.wait_for(watching, 10)
        finally:
            postgres_server.start()
            await holder.release()

    asyncio.run(main())
