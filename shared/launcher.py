"""Run EPIC's parts as separate processes, as in the field, and stop them cleanly.

Used by ``epic demo`` and the benchmark harness: each part (broker, centre, edges) is an
``epic`` sub-command in its own process group with its log in a file, so one can be killed
(a device dying) without touching the others, and Ctrl-C stops them all in order: the parts
of a group (the edges) together, the groups in the reverse order of their start. A part
whose supervisor is killed outright stops by itself (``epic.shared.parentwatch``).

Logs: ``LOGS/<part>.log`` is this run's; each start moves the last ``KEEP_LOGS`` runs' to
``<part>.log.1`` (newest) ... ``.log.N``, and ``Supervisor.trim_logs`` does the same to a log
that outgrows its bound during a long run, so a demo's logs never grow without bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from epic.shared.errors import UserError
from epic.shared.parentwatch import ENV

__all__ = [
    "Child",
    "LaunchError",
    "Supervisor",
    "free_port",
    "get_json",
    "port_in_use",
    "rotate_log",
]

KEEP_LOGS = 3  # earlier runs' logs kept beside this run's
MAX_LOG_BYTES = 20 * 1024 * 1024  # a log bigger than this is rotated during a run


class LaunchError(UserError, RuntimeError):
    """A part did not start, or stopped while it should run; the message says which and
    where its log is (what to fix is in that log)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` as JSON; ``None`` when nothing answers (yet) or the answer is not 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def rotate_log(path: Path, keep: int = KEEP_LOGS, truncate: bool = False) -> None:
    """``path`` -> ``path.1`` -> ... -> ``path.<keep>`` (the oldest dropped).

    ``truncate``: copy, then empty ``path`` in place (logrotate's copytruncate) for a log a
    running part still appends to; a line written between the two steps is lost.
    """
    if not path.exists():
        return
    older = [path.with_name(f"{path.name}.{k}") for k in range(1, keep + 1)]
    older[-1].unlink(missing_ok=True)
    for k in range(keep - 1, 0, -1):
        if older[k - 1].exists():
            older[k - 1].replace(older[k])
    if truncate:
        shutil.copyfile(path, older[0])
        with path.open("r+b") as log:
            log.truncate(0)
    else:
        path.replace(older[0])


@dataclass
class Child:
    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    group: str | None = None  # parts of one group are stopped together
    process: subprocess.Popen | None = None
    _log_file: IO[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        rotate_log(self.log)
        # Append mode: trim_logs may empty the file under the running part.
        self._log_file = self.log.open("ab")
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            ENV: str(os.getpid()),  # the part stops if this process dies (epic.parentwatch)
            **self.env,
        }
        # Own session: Ctrl-C in the terminal reaches the supervisor only, which then stops
        # the parts in order instead of all of them dying at once.
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The process's id, once started."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.pid

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns the exit code."""
        self.signal(signal.SIGTERM)
        return self.wait_stopped(grace_s)

    def wait_stopped(self, grace_s: float = 10.0) -> int | None:
        """Wait for the exit after a SIGTERM; SIGKILL after ``grace_s``."""
        if self.process is None:
            return None
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(5)
        if self._log_file is not None:
            self._log_file.close()
        return self.process.returncode

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def epic_argv(*args: str) -> list[str]:
    """This interpreter running the ``epic`` CLI: works without the console script on PATH."""
    return [sys.executable, "-c", "from epic.cli import main; main()", *args]


class Supervisor:
    """Starts children, waits for them to be ready, stops them in reverse order."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.children: list[Child] = []

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None, group: str | None = None
    ) -> Child:
        """``epic ARGS`` as part ``name``; ``group``: stopped together with its group."""
        child = Child(name, epic_argv(*args), self.logs / f"{name}.log", env or {}, group)
        child.start()
        self.children.append(child)
        return child

    def wait_until(self, child: Child, ready: Any, what: str, timeout_s: float = 60.0) -> None:
        """Poll ``ready()`` until true; fail early, with the log's tail, if the child died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not child.alive:
                code = None if child.process is None else child.process.returncode
                # The first line is the one-line error; the log's tail follows for a human.
                raise LaunchError(
                    f"{child.name} exited (code {code}) before {what}; "
                    f"see its log, {child.log}\n{child.tail()}"
                )
            if ready():
                return
            time.sleep(0.2)
        raise LaunchError(f"{child.name}: no {what} after {timeout_s:.0f} s; log {child.log}")

    def wait_port(self, child: Child, port: int, host: str = "127.0.0.1", **kw: Any) -> None:
        def accepting() -> bool:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return True
            except OSError:
                return False

        self.wait_until(child, accepting, f"listener on {host}:{port}", **kw)

    def dead(self) -> list[Child]:
        return [c for c in self.children if not c.alive]

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Stop the parts in the reverse order of their start, each group at once: the
        edges together, so that none keeps sending to a centre whose other edges are gone
        (samples it would drop, with a warning, for too few devices)."""
        for batch in _batches(list(reversed(self.children))):
            for child in batch:
                child.signal(signal.SIGTERM)
            for child in batch:
                child.wait_stopped(grace_s)

    def trim_logs(self, max_bytes: int = MAX_LOG_BYTES) -> None:
        """Rotate, in place, any running part's log bigger than ``max_bytes``."""
        for child in self.children:
            with contextlib.suppress(OSError):
                if child.log.stat().st_size > max_bytes:
                    rotate_log(child.log, truncate=True)


def _batches(children: list[Child]) -> list[list[Child]]:
    """Consecutive children of one group form a batch; a child without a group is alone."""
    batches: list[list[Child]] = []
    for child in children:
        if batches and child.group is not None and batches[-1][0].group == child.group:
            batches[-1].append(child)
        else:
            batches.append([child])
    return batches
