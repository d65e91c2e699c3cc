"""The centre serves before it loads: its port is taken (or refused) at once, the API answers
503 "starting" while the model loads and the decoder is profiled, and a stop in the middle of
that is clean. Loading is held on an event here, so every step is seen for certain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from epic.central.service import CentralService
from epic.shared import bundle

from .conftest import ROOT


@pytest.fixture
def held_load(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The model load waits until the test sets the event (set at the end in any case)."""
    release = threading.Event()
    real = bundle.load_central_model

    def slow(bundle: Path):  # type: ignore[no-untyped-def]
        assert release.wait(60), "the test never released the model load"
        return real(bundle)

    monkeypatch.setattr(bundle, "load_central_model", slow)
    yield release
    release.set()


async def _serving(service: CentralService) -> str:
    for _ in range(1000):
        if getattr(service, "http", None) is not None and service.http.port is not None:
            return f"http://127.0.0.1:{service.http.port}"
        await asyncio.sleep(0.01)
    raise TimeoutError("the API did not start")


def test_the_api_says_starting_until_the_model_is_ready(
    bundle: Path, settings_for: Callable[..., object], held_load: threading.Event
) -> None:
    # No broker needed: the centre only starts its client, which keeps retrying.
    settings = settings_for(bundle, "mqtt://127.0.0.1:9")

    async def scenario() -> None:
        service = CentralService(settings)  # type: ignore[arg-type]
        starting = asyncio.create_task(service.start())
        try:
            base = await _serving(service)
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                health = await http.get("/api/health")
                assert health.status_code == 503 and health.headers["retry-after"]
                body = health.json()
                assert body["status"] == "starting" and body["stage"] == "loading the model"
                assert "try again" in body["detail"]
                for path in ("/api/maps/latest", "/api/maps", "/api/devices", "/api/maps/a"):
                    response = await http.get(path)
                    assert response.status_code == 503, path
                    assert response.json()["status"] == "starting"
                for path in ("/", "/docs", "/openapi.json", "/metrics"):
                    assert (await http.get(path)).status_code == 200, path
                ws_url = base.replace("http", "ws") + "/ws/live"
                async with websockets.connect(ws_url) as ws:
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
                assert "starting" in closed.value.rcvd.reason
                assert not starting.done()

                held_load.set()
                await asyncio.wait_for(starting, 120)
                assert service.ready
                health = await http.get("/api/health")
                assert health.status_code == 200
                assert health.json()["status"] == "degraded"  # no broker here: not "starting"
                assert (await http.get("/api/devices")).status_code == 200
        finally:
            held_load.set()
            if not starting.done():
                starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            await service.stop()

    asyncio.run(scenario())


def test_a_stop_while_the_model_loads_is_clean(
    bundle: Path, settings_for: Callable[..., object], held_load: threading.Event
) -> None:
    settings = settings_for(bundle, "mqtt://127.0.0.1:9")

    async def scenario() -> int:
        service = CentralService(settings)  # type: ignore[arg-type]
        starting = asyncio.create_task(service.start())
        base = await _serving(service)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            assert (await http.get("/api/health")).status_code == 503
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await asyncio.wait_for(service.stop(), 15)
        held_load.set()  # the worker thread still loading finishes on its own
        return int(base.rsplit(":", 1)[1])

    port = asyncio.run(scenario())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # released


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EPIC_CENTRAL_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "epic", "central", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


# Runs `epic` with torch unimportable: what happens before the model code is loaded
# cannot depend on it.
NO_TORCH = """
import runpy, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch imported before the port was bound")

sys.meta_path.insert(0, Refuse())
sys.argv = ["epic", *sys.argv[1:]]
runpy.run_module("epic", run_name="__main__")
"""


def test_a_port_in_use_is_refused_before_torch_is_imported(bundle: Path, tmp_path: Path) -> None:
    # Bound before the model code loads, so the refusal cannot wait for it: checked by
    # order (torch refused), not by a clock that a loaded machine would make flaky.
    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = subprocess.run(
            [
                sys.executable,
                str(script),
                "central",
                "--bundle",
                str(bundle),
                "--port",
                str(port),
                "--db",
                str(tmp_path / "c.sqlite"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert process.returncode == 2, process.stderr
    assert process.stderr.strip() == (
        f"epic: error: 127.0.0.1:{port}: the port is in use (another centre, or the "
        "demo?); choose another with --port"
    )


@pytest.mark.slow
def test_the_port_is_bound_first_and_serves_starting(bundle: Path, tmp_path: Path) -> None:
    # The first line says the port is listening while the model still loads: bound first.
    for attempt in range(2):
        process = _spawn(
            "--bundle", str(bundle), "--port", "0", "--db", str(tmp_path / f"c{attempt}.sqlite")
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"listening on (http://\S+); loading the model", line)
            assert match, line + process.stderr.read() if process.stderr else line
            url = match[1]
            # The kernel holds a connection made now until the server reads it: never refused.
            health = httpx.get(url + "api/health", timeout=30)
            assert health.status_code in (200, 503)
            if health.status_code == 503:
                assert health.json()["status"] == "starting"
            rest = ""
            while "monitor at" not in rest:
                rest = process.stdout.readline()
                assert rest, "the centre stopped before it was ready"
            ready = json.loads(httpx.get(url + "api/health", timeout=10).text)
            assert ready["deployment"] == "demo"
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
        assert process.returncode == 0 and "Traceback" not in err, err
