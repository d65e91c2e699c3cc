"""``epic central``: one-line errors for bad arguments; a real run serves, then stops cleanly
on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.brokers import BrokerProcess

from .conftest import ROOT


def epic(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "epic", "central", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--broker", "mqtt://127.0.0.1:1"], "--bundle is required"),
        (["--bundle", "/no/such/bundle"], "/no/such/bundle: no such folder"),
        (["--bundle", "B", "--broker", "http://host:1"], "is not a broker URL"),
        (["--bundle", "B", "--clock", "sometimes"], "not one of 'arrival', 'synced'"),
        (["--bundle", "B", "--deadline-ms", "0"], "--deadline-ms: Input should be greater than 0"),
        (["--bundle", "B", "--port", "70000"], "--port"),
        (["--bundle", "B", "--tls-ca", "/no/ca.pem"], "no such file"),
        (["--bundle", "B", "--min-devices", "6"], "more than the deployment's 5"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    args: list[str], says: str, bundle: Path, tmp_path: Path
) -> None:
    args = [str(bundle) if a == "B" else a for a in args]
    extra = [] if "--port" in args else ["--port", "0"]  # never 8000, should one start
    result = epic(*args, "--db", str(tmp_path / "c.sqlite"), *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epic: error: ") and says in lines[0]


@pytest.mark.slow
def test_serves_and_stops_cleanly_on_sigterm(
    embedded_broker: BrokerProcess, bundle: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EPIC_CENTRAL_THREADS": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "epic",
            "central",
            "--bundle",
            str(bundle),
            "--broker",
            embedded_broker.url,
            "--port",
            "0",
            "--db",
            str(tmp_path / "c.sqlite"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        url, seen = None, []
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            seen.append(line)
            if match := re.search(r"monitor at (http://\S+)", line):
                url = match[1]
            if not line and process.poll() is not None:
                break
        assert url, "".join(seen)
        health = httpx.get(url + "api/health", timeout=10).json()
        assert health["deployment"] == "demo" and health["decode_ms_p95"] > 0
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=30)[0]
        assert process.returncode == 0, rest
        assert "stopping" in rest and "Traceback" not in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
