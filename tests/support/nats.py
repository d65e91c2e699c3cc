"""A real NATS server cluster (Debian's ``nats-server``: MQTT with JetStream), started per test.

``NatsCluster(folder, nodes=3, auth=creds/"nats-auth.conf")`` writes one configuration per
node: JetStream with its own store, a cluster route to every other node, an MQTT listener
whose sessions, retained messages and QoS 1 deliveries JetStream keeps on ``replicas`` nodes,
and the users of ``epic broker credentials`` (``include``d, as in the field). Ports are free
ones. ``kill(i)`` is a SIGKILL: the node's TCP connections drop as in a lost machine.

Without ``nats-server`` the tests *fail*, saying how to install it (``make system-deps``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.mosquitto import free_port
from tests.support.processes import stop_process, system_program

__all__ = ["NatsCluster", "find_nats_server"]


def find_nats_server() -> str:
    return system_program("nats-server", "nats-server")


class NatsCluster:
    host = "127.0.0.1"

    def __init__(self, folder: Path, nodes: int = 3, auth: Path | None = None) -> None:
        self.folder = folder
        self.binary = find_nats_server()
        self.n = nodes
        self.mqtt_ports = [free_port() for _ in range(nodes)]
        self.route_ports = [free_port() for _ in range(nodes)]
        self.http_ports = [free_port() for _ in range(nodes)]
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * nodes
        folder.mkdir(parents=True, exist_ok=True)
        if auth is not None:
            shutil.copy(auth, folder / "nats-auth.conf")
        for i in range(nodes):
            self.config(i).write_text(self._render(i, auth is not None))

    def config(self, i: int) -> Path:
        return self.folder / f"n{i}.conf"

    def log(self, i: int) -> Path:
        return self.folder / f"n{i}.log"

    def url(self, i: int) -> str:
        return f"mqtt://{self.host}:{self.mqtt_ports[i]}"

    @property
    def urls(self) -> str:
        """Every node, as ``--broker`` takes them."""
        return ",".join(self.url(i) for i in range(self.n))

    def _render(self, i: int, auth: bool) -> str:
        routes = ", ".join(
            f'"nats-route://{self.host}:{p}"' for k, p in enumerate(self.route_ports) if k != i
        )
        replicas = min(3, self.n)
        lines = [
            f"server_name: n{i}",
            f"listen: {self.host}:{free_port()}",
            f"http: {self.host}:{self.http_ports[i]}",
            f'jetstream {{ store_dir: "{self.folder / f"js{i}"}" }}',
            f"mqtt {{ listen: {self.host}:{self.mqtt_ports[i]}, stream_replicas: {replicas}, "
            f"consumer_replicas: {replicas} }}",
        ]
        if self.n > 1:
            lines.append(
                f"cluster {{ name: epic, listen: {self.host}:{self.route_ports[i]}, "
                f"routes: [{routes}] }}"
            )
        if auth:
            lines.append('include "nats-auth.conf"')
        return "\n".join(lines) + "\n"

    def start(self, i: int | None = None, timeout: float = 30.0) -> None:
        """Start one node (or every one), and wait until JetStream answers on each."""
        for k in range(self.n) if i is None else [i]:
            with self.log(k).open("ab") as log:
                self.processes[k] = subprocess.Popen(
                    [self.binary, "-c", str(self.config(k))], stdout=log, stderr=log
                )
        deadline = time.monotonic() + timeout
        for k in range(self.n) if i is None else [i]:
            while not self._healthy(k):
                process = self.processes[k]
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"nats-server n{k} exited:\n{self.log(k).read_text()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server n{k} not ready:\n{self.log(k).read_text()}")
                time.sleep(0.2)

    def _healthy(self, i: int) -> bool:
        try:
            url = f"http://{self.host}:{self.http_ports[i]}/healthz"
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def mqtt_clients(self, i: int) -> list[str]:
        """The MQTT client ids connected to node ``i`` now (its monitoring port)."""
        url = f"http://{self.host}:{self.http_ports[i]}/connz?limit=1000"
        try:
            connections = httpx.get(url, timeout=2).json().get("connections") or []
        except (httpx.HTTPError, ValueError):
            return []
        return [c["mqtt_client"] for c in connections if c.get("mqtt_client")]

    def leaders(self) -> dict[str, str]:
        """Who leads JetStream now: ``{"meta": "n2", "$MQTT_msgs": "n1", ...}``."""
        for i in range(self.n):
            url = f"http://{self.host}:{self.http_ports[i]}/jsz?streams=true&accounts=true"
            try:
                report = httpx.get(url, timeout=2).json()
            except (httpx.HTTPError, ValueError):
                continue
            found = {"meta": report.get("meta_cluster", {}).get("leader", "")}
            for account in report.get("account_details") or []:
                for stream in account.get("stream_detail") or []:
                    found[stream["name"]] = stream.get("cluster", {}).get("leader", "")
            return found
        return {}

    def follower(self, of: tuple[str, ...] = ("meta", "$MQTT_msgs")) -> int:
        """A node that leads none of ``of`` (JetStream's meta group, the MQTT message
        stream), and the fewest other groups."""
        leaders = self.leaders()
        led = list(leaders.values())
        candidates = [i for i in range(self.n) if f"n{i}" not in [leaders.get(g) for g in of]]
        return min(candidates or range(self.n), key=lambda i: led.count(f"n{i}"))

    def kill(self, i: int) -> None:
        stop_process(self.processes[i], kill=True, timeout=10)
        self.processes[i] = None

    def stop(self) -> None:
        for i in range(self.n):
            stop_process(self.processes[i], kill=False, timeout=10)
            self.processes[i] = None

    def logs(self) -> str:
        return "\n".join(
            f"--- n{i}\n{self.log(i).read_text(errors='replace')}"
            for i in range(self.n)
            if self.log(i).exists()
        )
