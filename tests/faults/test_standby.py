"""Two centres of one deployment on one PostgreSQL store: the active one is killed with
SIGKILL mid-stream, the standby takes over within 5 s, and every sample streamed (before,
during and after the kill) ends as one complete map: no acknowledged latent and no map is
lost. Real processes: ``epic central`` twice, Mosquitto with the field configuration and
``epic broker credentials``' passwords, a PostgreSQL server.

The broker is Mosquitto, not the embedded amqtt: amqtt cannot hand a session over while
it is delivering QoS 1 messages to a client that was killed (it waits for PUBACKs that never
come, and the next CONNECT of that client id gets no CONNACK), which is exactly the moment
of a takeover. The field runs Mosquitto.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import httpx
import pytest

from epic.broker.credentials import write_credentials
from tests.central.service.conftest import Feed
from tests.support.mosquitto import MosquittoProcess

from .central_process import CentralProcess
from .test_centre_crash import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SAMPLES = 24
KILL_AFTER = 8  # samples streamed before the kill
RATE_HZ = 4.0


async def health(centre: CentralProcess) -> tuple[int, dict]:
    async with httpx.AsyncClient(base_url=centre.url, timeout=5) as http:
        response = await http.get("/api/health")
        return response.status_code, response.json()


async def connected(centre: CentralProcess) -> bool:
    try:
        code, body = await health(centre)
    except httpx.HTTPError:
        return False
    return code == 200 and bool(body.get("broker_connected"))


async def stored(centre: CentralProcess) -> dict[str, dict]:
    """Every stored map's newest version by sample id."""
    listed = await centre.get("/api/maps", limit=500)
    return {m["sample_id"]: m for m in listed["maps"]}


def test_the_standby_takes_over_a_killed_centre_and_no_sample_is_lost(
    mosquitto_factory: Callable[..., MosquittoProcess],
    bundle: Path,
    feed: Feed,
    tmp_path: Path,
    postgres_url: str,
) -> None:
    creds = write_credentials(tmp_path / "creds", feed.deployment, feed.devices)
    broker = mosquitto_factory(tmp_path / "creds")
    # Both log in as "central", the client id Mosquitto gives them: one persistent MQTT
    # session for the deployment, whichever centre holds it.
    login = ("--username", "central", "--password", creds.passwords["central"])
    first = CentralProcess(bundle, broker.url, tmp_path / "a", *login, db=postgres_url)
    second = CentralProcess(bundle, broker.url, tmp_path / "b", *login, db=postgres_url)
    everything = sorted(feed.sample_id(k) for k in range(SAMPLES))
    after_kill = {feed.sample_id(k) for k in range(KILL_AFTER, SAMPLES)}

    async def main() -> None:
        await first.start()
        await second.start(ready=False)

        async def standby() -> bool:
            code, body = await health(second)
            assert code == 503, body  # never active beside the first
            return body["status"] == "standby"

        await wait_for(standby, 30, "the second centre in standby")
        await wait_for(lambda: connected(first), 20, "the active centre's broker connection")
        killed: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        async def stream() -> None:
            async with contextlib.AsyncExitStack() as stack:
                devices = [
                    await stack.enter_async_context(
                        aiomqtt.Client(
                            broker.host,
                            broker.port,
                            username=d,
                            password=creds.passwords[d],
                            identifier=d,
                        )
                    )
                    for d in feed.devices
                ]
                for k in range(SAMPLES):
                    for device, name in zip(devices, feed.devices, strict=True):
                        await device.publish(*feed.message(k, name), qos=1)
                    if k == KILL_AFTER - 1:
                        first.kill()  # mid-stream: samples open, latents in flight
                        killed.set_result(time.monotonic())
                    await asyncio.sleep(1 / RATE_HZ)

        streaming = asyncio.create_task(stream())
        killed_at = await killed

        async def decodes() -> bool:
            return await connected(second) and bool(after_kill & set(await stored(second)))

        await wait_for(decodes, 5.0, "a map decoded by the standby")
        takeover_s = time.monotonic() - killed_at
        await streaming

        async def complete() -> bool:
            return sorted(await stored(second)) == everything

        await wait_for(complete, 30, f"maps of all {SAMPLES} samples")
        maps = await stored(second)
        incomplete = {s: m["devices_missing"] for s, m in maps.items() if m["partial"]}
        assert incomplete == {}, incomplete  # every latent of every sample is in its map
        assert takeover_s < 5.0
        assert "active: the other centre" in second.logs()
        assert "Traceback" not in second.logs()
        print(f"takeover: {takeover_s:.2f} s from SIGKILL to a map decoded by the standby")

    try:
        asyncio.run(main())
    finally:
        first.stop()
        second.stop()
