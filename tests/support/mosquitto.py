"""The real Mosquitto 2, started per test with EPIC's field configuration.

``mosquitto_factory(credentials_dir, tls=None)`` starts ``mosquitto -c <tmp>/mosquitto.conf``
as rendered by ``epic.broker.mosquitto_config.render_mosquitto_conf``: no anonymous clients,
``credentials_dir/passwd`` and ``credentials_dir/acl`` (as ``epic broker credentials``
writes them), persistence in a temporary folder, a plain listener on 127.0.0.1 and, with
``tls=TlsFiles(...)`` (``tests.support.tls.make_tls``), a TLS listener. Ports are free ones.

The credential files are mode 0600. Mosquitto started as root drops to user ``mosquitto``,
which could not read them, so the config sets ``user`` to whoever runs the tests (for a
non-root run that setting is ignored, and the files are that user's own).

Without Mosquitto the tests *fail*, saying how to install it: the field broker is the one
that enforces the security, and a skipped test would hide that it was never checked.
"""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from epic.broker.mosquitto_config import render_mosquitto_conf
from tests.support.processes import stop_process, system_program
from tests.support.tls import TlsFiles

__all__ = ["MosquittoProcess", "find_mosquitto", "free_port", "mosquitto_factory"]


def find_mosquitto() -> str:
    """The broker's path, or fail the test with how to install it."""
    return system_program("mosquitto", "mosquitto")


def free_port() -> int:
    """A port free right now (Mosquitto cannot report a port 0 choice, so we pick one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MosquittoProcess:
    """One Mosquitto; ``port`` is the plain localhost listener, ``tls_port`` the TLS one."""

    host = "127.0.0.1"

    def __init__(self, folder: Path, credentials: Path, tls: TlsFiles | None = None) -> None:
        self.folder = folder
        self.credentials = credentials
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port() if tls is not None else None
        self.config = folder / "mosquitto.conf"
        self._log = folder / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        (folder / "data").mkdir(exist_ok=True)
        self.config.write_text(
            render_mosquitto_conf(
                password_file=credentials / "passwd",
                acl_file=credentials / "acl",
                persistence_location=folder / "data",
                local_port=self.port,
                tls_port=self.tls_port,
                cafile=tls.ca if tls else None,
                certfile=tls.cert if tls else None,
                keyfile=tls.key if tls else None,
                user=getpass.getuser(),
                log_dest="stderr",
                persistent_client_expiration=None,
            )
        )

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def start(self, timeout: float = 15.0) -> None:
        """Start it (same ports and data folder as before) and wait until it accepts TCP."""
        if self.running:
            raise RuntimeError("mosquitto is already running")
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [find_mosquitto(), "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        ports = [p for p in (self.port, self.tls_port) if p is not None]
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self._process.returncode}:\n{self.log()}"
                )
            if all(_accepts(port) for port in ports):
                return
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"mosquitto did not listen within {timeout} s:\n{self.log()}")

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """SIGTERM (Mosquitto saves its persistence file) or ``kill=True``: SIGKILL."""
        process, self._process = self._process, None
        stop_process(process, kill=kill, timeout=timeout)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture
def mosquitto_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., MosquittoProcess]]:
    """Start Mosquittos: ``factory(credentials_dir, tls=None)``; all stopped at the end."""
    made: list[MosquittoProcess] = []

    def make(credentials: Path, tls: TlsFiles | None = None) -> MosquittoProcess:
        broker = MosquittoProcess(tmp_path_factory.mktemp("mosquitto"), credentials, tls)
        made.append(broker)
        broker.start()
        return broker

    yield make
    for broker in made:
        broker.stop()
