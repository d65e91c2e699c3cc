"""``epic central`` as a real process, for tests that kill it (SIGKILL) or starve it of disk."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from epic.shared.launcher import free_port

__all__ = ["CentralProcess"]

_REPO = Path(__file__).resolve().parents[2]


class CentralProcess:
    """One centre; ``start()`` again after ``kill()`` reuses the same port, db and client id."""

    def __init__(
        self,
        bundle: Path,
        broker_url: str,
        folder: Path,
        *options: str,
        preexec: Callable[[], None] | None = None,
        db: str | None = None,
    ) -> None:
        """``db``: a PostgreSQL URL; by default a SQLite file in ``folder``."""
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.db: Path | str = db or folder / "central.sqlite"
        self.argv = [
            sys.executable,
            "-m",
            "epic",
            "central",
            "--bundle",
            str(bundle),
            "--broker",
            broker_url,
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--threads",
            "1",
            *options,
        ]
        self.preexec = preexec
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / f"central-{self.starts}.log"

    def logs(self) -> str:
        return "\n".join(
            (self.folder / f"central-{k}.log").read_text(errors="replace")
            for k in range(1, self.starts + 1)
        )

    async def start(self, timeout: float = 60.0, ready: bool = True) -> None:
        """Start and wait until its API answers: 200 (ready), or anything (``ready=False``:
        a standby answers 503)."""
        self.starts += 1
        env = {
            **os.environ,
            "PYTHONPATH": str(_REPO),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env=env,
                preexec_fn=self.preexec,
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"epic central exited {self.process.returncode}:\n"
                        f"{self.log.read_text(errors='replace')}"
                    )
                try:
                    code = (await http.get("/api/health")).status_code
                    if code == 200 or not ready:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"epic central did not answer in {timeout} s:\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.get(path, params=params)
            response.raise_for_status()
            return response.json()
