"""``epic api``: one-line errors for bad arguments; a real run over a centre's SQLite file
serves its deployments, then stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from epic.central.store import MapStore
from epic.shared.launcher import free_port

from .conftest import ROOT
from .test_store import summary, velocity


def epic_api(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "epic", "api", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "--db is required (or EPIC_API_DB)"),
        (["--db", "/no/such.sqlite"], "/no/such.sqlite: no such database file"),
        (["--db", ":memory:"], ":memory: holds no centre's maps"),
        (["--db", "mysql://h/db"], "mysql:// is not a database EPIC drives"),
        (["--db", "DB", "--deployment", "no such"], "'no such' is not a deployment name"),
        (["--db", "DB", "--api-token", "short"], "at least 16 characters"),
        (["--db", "README.md"], "cannot read the database"),
        (["--db", "postgresql://u:secret@127.0.0.1:1/x"], "is the server up"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], says: str, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    asyncio.run(_a_centres_database(db))
    args = [str(db) if a == "DB" else a for a in args]
    result = epic_api(*args, "--port", "0")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epic: error: ") and says in lines[0]
    assert "secret" not in result.stderr and len(lines[0]) < 300


async def _a_centres_database(db: Path) -> None:
    store = MapStore(db, "north")
    await store.open()
    await store.save(summary("s0", deployment="north"), velocity(0))
    await store.close()


def test_serves_a_centres_database_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    asyncio.run(_a_centres_database(db))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "epic", "api", "--db", str(db), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                listed = httpx.get(f"http://127.0.0.1:{port}/api/deployments", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        assert [d["deployment"] for d in listed.json()["deployments"]] == ["north"]
        # One deployment: the short paths answer for it, as a centre's do.
        latest = httpx.get(f"http://127.0.0.1:{port}/api/maps/latest", timeout=5).json()
        assert latest["sample_id"] == "s0"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "1 deployment (north)" in out and "stopping" in out
    assert "Traceback" not in err
