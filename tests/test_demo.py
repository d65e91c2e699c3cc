"""``epic demo`` as a newcomer runs it: broker, centre and five edges as processes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from epic.shared.launcher import epic_argv, free_port, get_json


def _wait(what: str, check, deadline: float, proc: subprocess.Popen, log: Path):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo exited early while waiting for {what}:\n{log.read_text()[-3000:]}")
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"no {what} in time:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_demo_maps_arrive_and_a_killed_device_turns_maps_partial(tmp_path: Path) -> None:
    port, broker_port = free_port(), free_port()
    log = tmp_path / "demo.out"
    kill_after = 45
    started = time.monotonic()
    argv = epic_argv(
        "demo",
        "--duration",
        "85",
        "--port",
        str(port),
        "--broker-port",
        str(broker_port),
        "--kill-device",
        "dev-3",
        "--after",
        str(kill_after),
        "--pool-size",
        "4",
        "--workdir",
        str(tmp_path / "run"),
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "EPIC_CACHE": str(tmp_path / "cache")},
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def complete_map_and_all_online() -> dict | None:
            latest = get_json(f"{base}/api/maps/latest")
            devices = get_json(f"{base}/api/devices")
            if not latest or not devices:
                return None
            online = {d["id"] for d in devices["devices"] if d["online"]}
            if online == {f"dev-{i}" for i in range(5)} and not latest["partial"]:
                return latest
            return None

        latest = _wait("complete map", complete_map_and_all_online, started + kill_after, proc, log)
        assert sorted(latest["devices_used"]) == [f"dev-{i}" for i in range(5)]
        assert len(latest["velocity"]) == 70 and len(latest["velocity"][0]) == 70
        assert latest["ssim"] is not None and 0 < latest["ssim"] <= 1

        def dev3_offline_and_partial() -> dict | None:
            devices = get_json(f"{base}/api/devices") or {"devices": []}
            dev3 = [d for d in devices["devices"] if d["id"] == "dev-3"]
            latest = get_json(f"{base}/api/maps/latest")
            if dev3 and not dev3[0]["online"] and latest and latest["partial"]:
                return latest
            return None

        partial = _wait("partial map", dev3_offline_and_partial, started + 80, proc, log)
        assert partial["devices_missing"] == ["dev-3"]
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert "monitor  http://127.0.0.1:" in text
    assert "demo figures:" in text
