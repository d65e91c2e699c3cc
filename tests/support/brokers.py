"""The embedded broker in a subprocess, for tests that stop and restart it.

Why a subprocess (``python -m epic broker``) and not a thread: a test can kill it like a real
outage (the clients' TCP connections drop), restart it on the *same* port, and nothing in the
test's own event loop or amqtt's process-wide state (its plugin registry, its loggers) is
shared with the broker. It also exercises the real ``epic broker`` command. Start-up takes
about a second.

The broker keeps nothing across a restart (``epic.broker.embedded``): after ``start()`` clients
reconnect to an empty broker, subscribe again, and republish retained state.

Use::

    def test_outage(embedded_broker):          # started, anonymous, on a free port
        ...connect to embedded_broker.host, embedded_broker.port...
        embedded_broker.stop()                 # or stop(kill=True): SIGKILL, no clean shutdown
        time.sleep(10)
        embedded_broker.start()                # same port

    def test_auth(embedded_broker_factory, tmp_path):
        broker = embedded_broker_factory(users=tmp_path / "passwd", acl=tmp_path / "acl")
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.processes import stop_process

__all__ = ["BrokerProcess", "embedded_broker", "embedded_broker_factory"]

_READY = re.compile(r"listening on mqtt://(?P<host>[^\s:]+):(?P<port>\d+)")
_REPO = Path(__file__).resolve().parents[2]


class BrokerProcess:
    """``epic broker`` as a child process; ``start()`` again reuses the first port."""

    def __init__(
        self,
        log_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        users: Path | None = None,
        acl: Path | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self._users = users
        self._acl = acl
        self._log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None
        self._starts = 0

    @property
    def port(self) -> int:
        """The port, fixed by the first start (0 asks for a free one)."""
        if not self._port:
            raise RuntimeError("the broker has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log(self) -> str:
        """What the broker printed in its latest run (for failure messages)."""
        return self._log.read_text(errors="replace") if self._log and self._log.exists() else ""

    def start(self, timeout: float = 20.0) -> None:
        """Start it and wait until it listens; retry while the old port is still held."""
        if self.running:
            raise RuntimeError(f"the broker on {self.url} is already running")
        deadline = time.monotonic() + timeout
        while True:
            if self._spawn(deadline):
                return
            # A restart can race the port's release; `epic broker` then exits 2 at once.
            if time.monotonic() >= deadline:
                raise RuntimeError(f"epic broker did not start within {timeout} s:\n{self.log()}")
            time.sleep(0.2)

    def _spawn(self, deadline: float) -> bool:
        self._starts += 1
        self._log = self._log_dir / f"broker-{self._starts}.log"
        command = [sys.executable, "-m", "epic", "broker", "--host", self.host]
        command += ["--port", str(self._port)]
        if self._users is not None:
            command += ["--users", str(self._users)]
        if self._acl is not None:
            command += ["--acl", str(self._acl)]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=_REPO, env=_child_env()
            )
        while time.monotonic() < deadline:
            match = _READY.search(self.log())
            if match:
                self._port = int(match["port"])
                return True
            if self._process.poll() is not None:
                if "cannot listen" in self.log() and self._port:
                    return False  # the port is not free yet: retry
                raise RuntimeError(
                    f"epic broker exited with {self._process.returncode}:\n{self.log()}"
                )
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"epic broker did not say it listens:\n{self.log()}")

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop it: SIGTERM and a clean shutdown, or ``kill=True`` for SIGKILL (a crash)."""
        process, self._process = self._process, None
        stop_process(process, kill=kill, timeout=timeout)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this checkout's packages whatever the caller's working directory.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def embedded_broker_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., BrokerProcess]]:
    """Make started brokers: ``factory(users=None, acl=None, port=0)``; all stopped at the end."""
    made: list[BrokerProcess] = []

    def make(*, users: Path | None = None, acl: Path | None = None, port: int = 0) -> BrokerProcess:
        broker = BrokerProcess(
            tmp_path_factory.mktemp("embedded-broker"), port=port, users=users, acl=acl
        )
        made.append(broker)
        broker.start()
        return broker

    yield make
    for broker in made:
        broker.stop()


@pytest.fixture
def embedded_broker(embedded_broker_factory: Callable[..., BrokerProcess]) -> BrokerProcess:
    """A started embedded broker, anonymous and without ACL, on a free port of 127.0.0.1."""
    return embedded_broker_factory()
