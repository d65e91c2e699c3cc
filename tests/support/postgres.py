"""A real PostgreSQL server for the tests, started once per session in a temporary folder.

``postgres_server`` runs ``initdb`` and ``pg_ctl start`` (Debian's ``postgresql`` package,
installed by ``make system-deps``) on a free port of 127.0.0.1, trusting local clients;
``postgres_url`` gives each test a database of its own on it. PostgreSQL refuses to run as
root, so a root test run starts it as user ``postgres`` (which the package creates).

Without PostgreSQL the tests *fail*, saying how to install it: a skipped test would hide
that the store was never checked against the engine it claims to support.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.mosquitto import free_port

__all__ = ["PostgresServer", "find_pg_bin", "postgres_server", "postgres_url"]


def find_pg_bin() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``, or fail the test with how to install them."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if versions:
        return Path(versions[-1]).parent
    pytest.fail("PostgreSQL is not installed: `make system-deps` (Debian package postgresql)")


@dataclass
class PostgresServer:
    bin: Path
    data: Path
    port: int
    as_user: list[str]  # runuser prefix when the tests run as root

    @property
    def url(self) -> str:
        return f"postgresql://epic@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self.ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "-w", "stop", check=False)

    def create_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = find_pg_bin()
    # Not under pytest's temporary folder: that one is private to root (mode 0700), and the
    # server runs as user postgres.
    root = Path(tempfile.mkdtemp(prefix="epic-postgres-"))
    data = root / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "epic", "-A", "trust"]
    subprocess.run(
        [*as_user, *initdb, "--no-sync"], capture_output=True, text=True, timeout=120, check=True
    )
    server = PostgresServer(bin_dir, data, free_port(), as_user)
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A database of this test's own on the session's server."""
    return postgres_server.create_database()
