"""Several edge daemons in one process (the throughput runs' edge host), against a real broker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiomqtt
import numpy as np
import pytest

from epic.edge.config import EdgeConfig
from epic.edge.connection import BrokerEndpoint
from epic.lab.bench.edge_group import run_group
from epic.shared.bundle import write_bundle
from epic.shared.physics.families import GENERATORS_VERSION

ROOT = Path(__file__).resolve().parents[3]


def _tiny_pool(cache: Path) -> None:
    """A one-sample pool in ``ShotPool``'s cache layout: random waveforms, a flat map (the
    daemons only replay it; simulating one would cost seconds)."""
    folder = cache / f"flatfault-a-g{GENERATORS_VERSION}-seed0-n1"
    (folder / "data").mkdir(parents=True)
    (folder / "model").mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "data" / "data1.npy", rng.standard_normal((1, 5, 1000, 70), np.float32))
    np.save(folder / "model" / "model1.npy", np.full((1, 1, 70, 70), 3000.0, np.float32))
    (folder / "epic-dataset.json").write_text("{}")


def test_group_runs_each_device_as_its_own_daemon(embedded_broker, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    # InversionNet's edges send raw blocks: no encoder to load, the quickest real daemon.
    write_bundle(ROOT / "models" / "inversionnet-lite.pt", bundle, "grp", 5)
    _tiny_pool(tmp_path / "pool")
    endpoint = BrokerEndpoint.parse(embedded_broker.url)
    devices = ["dev-0", "dev-3"]
    configs = [
        EdgeConfig(
            bundle=bundle,
            device_id=d,
            broker=endpoint,
            source="sim:flatfault-a",
            rate=50.0,
            mode="raw",
            start_slot=0,
            max_samples=2,
            pool_size=1,
            cache_dir=tmp_path / "pool",
            outbox=tmp_path / f"outbox-{d}.sqlite",
        )
        for d in devices
    ]

    async def scenario() -> tuple[dict[str, set[str]], dict[str, bool]]:
        raw: dict[str, set[str]] = {d: set() for d in devices}
        status: dict[str, bool] = {}
        async with aiomqtt.Client(embedded_broker.host, embedded_broker.port) as client:
            await client.subscribe("epic/grp/#", qos=0)

            async def read() -> None:
                async for m in client.messages:
                    parts = str(m.topic).split("/")
                    if parts[2] == "raw":
                        raw[parts[4]].add(parts[3])
                    elif parts[2] == "status":
                        status[parts[3]] = json.loads(m.payload)["online"]

            reader = asyncio.create_task(read())
            async with asyncio.timeout(60):
                await run_group(configs)  # returns once both have sent 2 and drained
                while len(status) < 2 or any(status.values()):
                    await asyncio.sleep(0.05)  # their goodbyes, behind the last blocks
            reader.cancel()
        return raw, status

    raw, status = asyncio.run(scenario())
    # Each device: its own connection (own status topic), the same two slots, 0 and 1.
    assert raw == {
        "dev-0": {"flatfault-a-0", "flatfault-a-1"},
        "dev-3": {"flatfault-a-0", "flatfault-a-1"},
    }
    assert status == {"dev-0": False, "dev-3": False}


@pytest.mark.parametrize("argv", [["--devices", "dev-0"], []])
def test_group_command_line_refuses_missing_options(argv: list[str]) -> None:
    from epic.lab.bench.edge_group import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
