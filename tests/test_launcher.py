"""The demo's process housekeeping (``epic.shared.launcher``): parts whose supervisor is killed
outright stop by themselves within 5 s, each run starts fresh logs and keeps a few earlier
ones, a log that outgrows its bound is rotated in place, and a group (the edges) is stopped
at once rather than one part after the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from epic.shared.launcher import KEEP_LOGS, Child, Supervisor
from epic.shared.parentwatch import ENV, watch_supervisor
from tests.central.service import conftest as service_fixtures

bundle = service_fixtures.bundle

GONE_WITHIN_S = 5.0

# A supervisor like `epic demo`'s: two brokers (a group) and a centre still loading its
# model, each an `epic` sub-command in its own session; then it waits to be killed.
SUPERVISOR = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from epic.shared.launcher import Supervisor

    logs, pids, bundle = map(Path, sys.argv[1:4])
    sup = Supervisor(logs)
    parts = [sup.start(f"broker-{i}", "broker", "--port", "0", group="brokers")
             for i in range(2)]
    parts.append(sup.start("central", "central", "--bundle", str(bundle), "--port", "0",
                           "--db", str(logs / "c.sqlite"), "--broker", "mqtt://127.0.0.1:9"))
    pids.write_text(json.dumps([p.process.pid for p in parts]))
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its new parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_parts_stop_within_5_s_when_the_supervisor_is_killed(bundle: Path, tmp_path: Path) -> None:
    pids_file = tmp_path / "pids.json"
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path / "logs"), str(pids_file), str(bundle)],
        cwd=Path(__file__).resolve().parents[1],
    )
    pids: list[int] = []
    try:
        assert _wait(pids_file.exists, 30), "the supervisor started nothing"
        pids = json.loads(pids_file.read_text())
        logs = [tmp_path / "logs" / f"broker-{i}.log" for i in range(2)]
        assert _wait(lambda: all("listening" in p.read_text() for p in logs), 60)
        assert not any(map(_gone, pids))
        supervisor.kill()  # SIGKILL: it can stop nothing
        supervisor.wait(10)
        killed = time.monotonic()
        assert _wait(lambda: all(map(_gone, pids)), GONE_WITHIN_S + 2)
        took = time.monotonic() - killed
        assert took < GONE_WITHIN_S, f"parts outlived their supervisor by {took:.1f} s"
        for log in logs:  # the brokers stopped cleanly, on their own SIGTERM
            assert "epic broker: stopped" in log.read_text()
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_watch_needs_its_variable_and_hides_it_from_grandchildren(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[tuple] = []

    class Thread:  # no real watch on this test process
        def __init__(self, target, args, name, daemon):  # type: ignore[no-untyped-def]
            started.append(args)

        def start(self) -> None:
            pass

    monkeypatch.setattr("epic.shared.parentwatch.threading.Thread", Thread)
    assert watch_supervisor({}) is False
    assert watch_supervisor({ENV: "not-a-pid"}) is False
    environ = {ENV: str(os.getppid())}  # our own parent: alive, so nothing happens
    assert watch_supervisor(environ) is True
    assert ENV not in environ
    # Not our parent, and alive: the variable was passed down to a grandchild; not ours.
    assert watch_supervisor({ENV: str(os.getpid())}) is False
    assert started == [(os.getppid(),)]


def test_each_run_starts_a_fresh_log_and_keeps_a_few(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for run in range(KEEP_LOGS + 3):
        child = Child("part", [sys.executable, "-c", f"print('run {run}')"], logs / "part.log")
        child.start()
        assert child.wait_stopped(30) == 0
    kept = sorted(p.name for p in logs.iterdir())
    assert kept == ["part.log", *(f"part.log.{k}" for k in range(1, KEEP_LOGS + 1))]
    last = KEEP_LOGS + 2
    assert (logs / "part.log").read_text() == f"run {last}\n"
    for k in range(1, KEEP_LOGS + 1):
        assert (logs / f"part.log.{k}").read_text() == f"run {last - k}\n"


def test_a_log_too_big_is_rotated_while_its_part_runs(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path)
    script = "import sys, time\nprint('x' * 2000)\nsys.stdin = None\ntime.sleep(30)\nprint('after')"
    child = Child("chatty", [sys.executable, "-c", script], tmp_path / "chatty.log")
    child.start()
    sup.children.append(child)
    try:
        assert _wait(lambda: child.log.stat().st_size > 2000, 30)
        sup.trim_logs(max_bytes=1000)
        assert (tmp_path / "chatty.log.1").read_text().startswith("x" * 2000)
        assert child.log.stat().st_size == 0 and child.alive
    finally:
        sup.stop_all(grace_s=5)


def test_a_group_is_stopped_at_once(tmp_path: Path) -> None:
    # Each part takes a second to stop: one after the other, three would take three.
    slow_stop = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(1), sys.exit(0)))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    sup = Supervisor(tmp_path)
    for i in range(3):
        child = Child(
            f"edge-{i}", [sys.executable, "-c", slow_stop], tmp_path / f"e{i}.log", group="edges"
        )
        child.start()
        sup.children.append(child)
    assert _wait(lambda: all("up" in c.log.read_text() for c in sup.children), 30)
    started = time.monotonic()
    sup.stop_all(grace_s=10)
    took = time.monotonic() - started
    assert all(c.process.returncode == 0 for c in sup.children)  # type: ignore[union-attr]
    assert took < 2.5, f"the group took {took:.1f} s to stop"
