"""Stopping a server process a test started: cleanly, or as a crash."""

from __future__ import annotations

import signal
import subprocess


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
