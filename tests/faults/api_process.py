"""``epic api`` as a real process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from epic.shared.launcher import free_port
from tests.support.processes import stop_process

__all__ = ["ApiProcess"]

_REPO = Path(__file__).resolve().parents[2]


class ApiProcess:
    def __init__(self, db: str, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.argv = [sys.executable, "-m", "epic", "api", "--db", db, "--port", str(self.port)]
        self.log = folder / "api.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "PYTHONPATH": str(_REPO), "PYTHONUNBUFFERED": "1"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, env=env
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"epic api exited:\n{self.logs()}")
                try:
                    if (await http.get("/api/deployments")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"epic api did not answer in {timeout} s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        stop_process(self.process, kill=False, timeout=20)
        return self.process.returncode

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            response = await http.get(path, params=params)
            response.raise_for_status()
            return response.json()
