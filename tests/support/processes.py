"""Server programs a test starts: finding them, and stopping them cleanly or as a crash."""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest


def system_program(name: str, package: str) -> str:
    """The path of a program that ``make system-deps`` installs (Debian puts servers in
    sbin, which a user's PATH may lack), or fail the test with how to install it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/usr/bin")
    if path is None:
        pytest.fail(
            f"{name} is not installed: run `make system-deps` (scripts/system-deps.sh), "
            f"which installs Debian's {package} package"
        )
    return path


def stop_process(process: subprocess.Popen | None, *, kill: bool, timeout: float) -> None:
    """SIGTERM (a clean stop) or ``kill=True``: SIGKILL (a crash); SIGKILL anyway after
    ``timeout`` seconds without an exit."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
