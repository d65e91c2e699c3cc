"""One benchmark run: a model's whole pipeline on this machine, started, watched and stopped.

``run_pipeline(spec)`` starts, each in its own process (``epic.shared.launcher.Supervisor``, logs
in ``<workdir>/logs``): the embedded broker (``epic broker``); the observer (this process,
``epic.lab.bench.observer``); the centre (``epic central`` scoring maps against the sim pool);
one link proxy per edge (``python -m epic.lab.bench.link``, between the edge and the broker,
counting the edge's wire bytes); and the edges (``epic edge``, or groups of edge daemons in
``epic.lab.bench.edge_group`` processes for the throughput runs). Every edge starts at the same
future time slot (``--start-slot``) with ``--max-samples``, so all of them cover exactly
the same samples; the run ends when every sample has its map, or when the edges have all
finished (or been killed) and the centre's deadline has passed, or at the time limit. The
processes are always stopped, in reverse order (edges, proxies, centre, broker), whatever
happened; the proxies write their byte counts as they stop.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from epic.central.settings import CentralSettings
from epic.lab.bench.observer import EnvelopeRecord, MapRecord, Observer, map_record
from epic.lab.bench.scenarios import Deployed
from epic.shared.launcher import Child, LaunchError, Supervisor, free_port, get_json

__all__ = ["RunResult", "RunSpec", "run_pipeline"]

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on [\d.]+:(\d+)")
_POLL_S = 0.2
_STOP_GRACE_S = 10.0
# The centre's T where a run leaves it to the centre (deadline_ms None): its settings' own.
CENTRE_DEADLINE_MS: float = CentralSettings.model_fields["deadline_ms"].default


@dataclass(frozen=True)
class RunSpec:
    label: str  # names the run's folder and its progress bars
    deployed: Deployed
    samples: int
    rate: float  # shots per second
    link: str  # the proxies' profile; None: edges connect to the broker directly
    family: str
    pool_size: int
    workdir: Path
    proxies: bool = True
    edges_per_process: int = 1  # > 1: lab.bench.edge_group hosts that many daemons each
    kill_every: int | None = None  # robustness: one more edge SIGKILLed every K samples
    deadline_ms: float | None = None
    min_devices: int | None = None
    max_open_samples: int | None = None
    central_threads: int | None = None
    observe_envelopes: bool = True
    lead_s: float = 15.0  # start slot this far ahead: every edge is up before it
    # The start slot is a multiple of this: with the pool's size, every run replays the pool
    # from its first sample, so runs compared side by side score the very same samples.
    align: int = 1
    drain_s: float = 30.0  # after the last slot: uploads, deadline, decode
    progress: bool = True

    @property
    def edges(self) -> int:
        return self.deployed.n_devices

    @property
    def devices(self) -> list[str]:
        from epic.shared.partition import device_ids

        return device_ids(self.edges)


@dataclass
class RunResult:
    spec: RunSpec
    start_slot: int
    expected: list[str]  # the sample ids every edge produced, in order
    envelopes: list[EnvelopeRecord]
    maps: list[MapRecord]  # every version the observer or the REST list saw
    link_stats: dict[str, dict] = field(default_factory=dict)  # device -> LinkStats fields
    health: dict = field(default_factory=dict)
    killed_ns: dict[str, int] = field(default_factory=dict)
    ready_ns: int | None = None  # when the last edge came online
    launched_ns: int = 0  # when the edges were started
    warmup: set[str] = field(default_factory=set)  # samples due before every edge was up
    finished: str = ""  # why the watch ended
    malformed: int = 0
    elapsed_s: float = 0.0
    load_at_start: tuple[float, float, float] = (0.0, 0.0, 0.0)  # os.getloadavg()

    def first_maps(self) -> dict[str, MapRecord]:
        """Each expected sample's first decode (what a user saw on time)."""
        wanted = set(self.expected)
        out: dict[str, MapRecord] = {}
        for m in sorted(self.maps, key=lambda m: m.version):
            if m.sample_id in wanted and m.sample_id not in out:
                out[m.sample_id] = m
        return out


def run_pipeline(spec: RunSpec) -> RunResult:
    """Run ``spec`` to its end; always stops every process it started."""
    from epic.edge.sources.base import slot_ns
    from epic.shared.pool import sample_id

    work = spec.workdir / spec.label
    if work.exists():  # a previous run's outboxes and store would leak into this one
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sup = Supervisor(work / "logs")
    deployment = spec.deployed.deployment
    started = time.monotonic()
    load = os.getloadavg()
    observer: Observer | None = None
    http = ""
    result: RunResult | None = None
    try:
        broker_port = free_port()
        broker = sup.start("broker", "broker", "--port", str(broker_port))
        sup.wait_port(broker, broker_port, timeout_s=60)
        observer = Observer("127.0.0.1", broker_port, deployment, envelopes=spec.observe_envelopes)
        observer.start()
        http = _start_centre(sup, spec, broker_port, work)
        targets = _start_proxies(sup, spec, broker_port, work)
        start_slot = math.ceil((time.time() + spec.lead_s) * spec.rate)
        start_slot = -(-start_slot // spec.align) * spec.align
        start_ns = slot_ns(start_slot, spec.rate)
        launched_ns = time.time_ns()
        _start_edges(sup, spec, targets, start_slot, work)
        expected = [sample_id(spec.family, start_slot + j) for j in range(spec.samples)]
        result = RunResult(
            spec, start_slot, expected, [], [], load_at_start=load, launched_ns=launched_ns
        )
        _wait_online(sup, spec, observer, start_ns, result)
        _watch(sup, spec, observer, start_slot, result)
        listing = get_json(f"{http}/api/maps?limit={min(10 * spec.samples + 100, 5000)}")
        result.health = get_json(f"{http}/api/health") or {}
        envelopes, maps = observer.snapshot()
        seen = {(m.sample_id, m.version) for m in maps}
        # The REST list fills in any summary the QoS 0 observer missed.
        for item in (listing or {}).get("maps", []):
            if (item["sample_id"], item["version"]) not in seen:
                maps.append(map_record(item))
        result.envelopes, result.maps = envelopes, maps
        result.malformed = observer.malformed
    except LaunchError as exc:
        raise RuntimeError(f"{spec.label}: {exc}") from None
    finally:
        if observer is not None:
            observer.stop()
        sup.stop_all(_STOP_GRACE_S)
    result.link_stats = _read_link_stats(spec, work)
    result.elapsed_s = time.monotonic() - started
    return result


# -- starting ---------------------------------------------------------------------------------
def _start_centre(sup: Supervisor, spec: RunSpec, broker_port: int, work: Path) -> str:
    port = free_port()
    args = [
        "central",
        "--bundle",
        str(spec.deployed.bundle),
        "--broker",
        f"mqtt://127.0.0.1:{broker_port}",
        "--port",
        str(port),
        "--db",
        str(work / "central.sqlite"),
        "--truth",
        f"sim:{spec.family}",
        "--truth-pool-size",
        str(spec.pool_size),
    ]
    for flag, value in (
        ("--deadline-ms", spec.deadline_ms),
        ("--min-devices", spec.min_devices),
        ("--max-open-samples", spec.max_open_samples),
        ("--threads", spec.central_threads),
    ):
        if value is not None:
            args += [flag, str(value)]
    centre = sup.start("central", *args)
    base = f"http://127.0.0.1:{port}"

    def connected() -> bool:
        health = get_json(f"{base}/api/health", timeout=1.0)
        return bool(health and health.get("broker_connected"))

    sup.wait_until(centre, connected, "connection to the broker", timeout_s=180)
    return base


def _start_proxies(sup: Supervisor, spec: RunSpec, broker_port: int, work: Path) -> dict[str, int]:
    """Each device's broker port: its own proxy's, or the broker's when there are none."""
    if not spec.proxies:
        return {device: broker_port for device in spec.devices}
    children = {}
    for i, device in enumerate(spec.devices):
        argv = [
            sys.executable,
            "-m",
            "epic.lab.bench.link",
            "--profile",
            spec.link,
            "--listen",
            "127.0.0.1:0",
            "--target",
            f"127.0.0.1:{broker_port}",
            "--seed",
            str(i),
            "--stats-file",
            str(work / f"link-{device}.json"),
        ]
        child = Child(f"link-{device}", argv, sup.logs / f"link-{device}.log", _module_env())
        child.start()
        sup.children.append(child)
        children[device] = child
    ports: dict[str, int] = {}
    for child in children.values():

        def listening(child: Child = child) -> bool:
            match = _LISTENING.search(child.log.read_text(errors="replace"))
            if match:
                ports[child.name.removeprefix("link-")] = int(match[1])
            return match is not None

        sup.wait_until(child, listening, "listening line", timeout_s=60)
    return ports


def _start_edges(
    sup: Supervisor, spec: RunSpec, targets: dict[str, int], start_slot: int, work: Path
) -> None:
    d = spec.deployed
    common = [
        "--bundle",
        str(d.bundle),
        "--source",
        f"sim:{spec.family}",
        "--rate",
        str(spec.rate),
        "--mode",
        d.mode,
        "--start-slot",
        str(start_slot),
        "--max-samples",
        str(spec.samples),
        "--pool-size",
        str(spec.pool_size),
    ]
    env = {"OMP_NUM_THREADS": "1"}  # an edge has one core's worth; torch must not spin on two
    if spec.edges_per_process <= 1:
        for device in spec.devices:
            sup.start(
                device,
                "edge",
                *common,
                "--device-id",
                device,
                "--broker",
                f"mqtt://127.0.0.1:{targets[device]}",
                "--outbox",
                str(work / f"outbox-{device}.sqlite"),
                env=env,
            )
        return
    if len(set(targets.values())) != 1:
        raise LaunchError("grouped edges connect to the broker directly (no per-edge proxy)")
    port = next(iter(targets.values()))
    devices = spec.devices
    groups = math.ceil(len(devices) / spec.edges_per_process)
    for g in range(groups):
        chunk = devices[g::groups]  # round robin: every group gets a spread of receivers
        argv = [
            sys.executable,
            "-m",
            "epic.lab.bench.edge_group",
            *common,
            "--devices",
            ",".join(chunk),
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--outbox-dir",
            str(work),
        ]
        child = Child(f"edges-{g}", argv, sup.logs / f"edges-{g}.log", {**env, **_module_env()})
        child.start()
        sup.children.append(child)


def _module_env() -> dict[str, str]:
    """``python -m epic.lab.bench...`` must find this checkout whatever the working directory."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


# -- watching ---------------------------------------------------------------------------------
def _bar(spec: RunSpec, total: int, desc: str, unit: str, leave: bool = True) -> Any:
    from tqdm import tqdm

    # Into a log file (not a terminal) a redraw every 0.2 s would be a line every 0.2 s.
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        disable=not spec.progress,
        mininterval=0.1 if interactive else 5.0,
    )


def _edge_children(sup: Supervisor) -> list[Child]:
    return [c for c in sup.children if c.name.startswith(("dev-", "edges-"))]


def _check_core(sup: Supervisor) -> None:
    for child in sup.children:
        if child.name in ("broker", "central") and not child.alive:
            raise LaunchError(
                f"{child.name} stopped unexpectedly; log {child.log}:\n{child.tail()}"
            )


def _wait_online(
    sup: Supervisor, spec: RunSpec, observer: Observer, start_ns: int, result: RunResult
) -> None:
    """Until every edge says it is online (retained status); note if that was too late."""
    want = set(spec.devices)
    limit = time.monotonic() + spec.lead_s + 120
    bar = _bar(spec, len(want), f"{spec.label}: edges up", "edge", leave=False)
    try:
        while (up := len(observer.online_devices() & want)) < len(want):
            bar.update(up - bar.n)
            _check_core(sup)
            dead = [c for c in _edge_children(sup) if not c.alive]
            if dead:
                raise LaunchError(
                    f"{dead[0].name} exited before going online; log "
                    f"{dead[0].log}:\n{dead[0].tail()}"
                )
            if time.monotonic() > limit:
                raise LaunchError(
                    f"only {up} of {len(want)} edges online after "
                    f"{spec.lead_s + 120:.0f} s; logs in {sup.logs}"
                )
            time.sleep(_POLL_S)
        bar.update(len(want) - bar.n)
    finally:
        bar.close()
    result.ready_ns = max(observer.online_since_ns.get(d, 0) for d in want)
    if result.ready_ns > start_ns:
        from epic.edge.sources.base import slot_ns

        # Slots already due when the last edge came up are produced late (catch-up): their
        # latencies describe start-up, not the pipeline, and are left out of the figures.
        result.warmup = {
            sid
            for j, sid in enumerate(result.expected)
            if slot_ns(result.start_slot + j, spec.rate) < result.ready_ns + 1_000_000_000
        }


def _watch(
    sup: Supervisor, spec: RunSpec, observer: Observer, start_slot: int, result: RunResult
) -> None:
    from epic.edge.sources.base import slot_ns

    expected = set(result.expected)
    first_due_s = slot_ns(start_slot, spec.rate) / 1e9
    last_due_s = slot_ns(start_slot + spec.samples - 1, spec.rate) / 1e9
    limit = last_due_s + spec.drain_s
    grace_s = (spec.deadline_ms or CENTRE_DEADLINE_MS) / 1e3 + 3.0
    kills = _kill_plan(spec, start_slot)
    edges_done_at: float | None = None
    bar = _bar(spec, spec.samples, f"{spec.label}: maps", "map")
    try:
        while True:
            now = time.time()
            done = len(observer.map_ids() & expected)
            bar.update(done - bar.n)
            if now < first_due_s:
                bar.set_postfix_str(f"first shot in {first_due_s - now:.0f} s", refresh=False)
            if done == spec.samples:
                result.finished = "every sample has its map"
                return
            _check_core(sup)
            while kills and now >= kills[0][0]:
                _, device = kills.pop(0)
                for child in sup.children:
                    if child.name == device:
                        child.signal(signal.SIGKILL)
                        result.killed_ns[device] = time.time_ns()
                bar.set_postfix_str(f"killed {', '.join(result.killed_ns)}")
            if (
                edges_done_at is None
                and not kills
                and not any(c.alive for c in _edge_children(sup))
            ):
                edges_done_at = now
            if edges_done_at is not None and now >= max(edges_done_at, last_due_s) + grace_s:
                result.finished = f"edges finished; {spec.samples - done} samples without a map"
                return
            if now >= limit:
                result.finished = f"time limit ({spec.drain_s:.0f} s after the last slot)"
                return
            time.sleep(_POLL_S)
    finally:
        bar.close()


def _kill_plan(spec: RunSpec, start_slot: int) -> list[tuple[float, str]]:
    """(unix time, device): edge ``j - 1`` dies 30 % of a slot before sample ``j * K`` is
    due, so sample ``j * K`` onwards has ``j`` devices cut; one edge always survives."""
    from epic.edge.sources.base import slot_ns

    if not spec.kill_every:
        return []
    plan = []
    for j in range(1, spec.edges):
        k = j * spec.kill_every
        if k >= spec.samples:
            break
        at = slot_ns(start_slot + k, spec.rate) / 1e9 - 0.3 / spec.rate
        plan.append((at, spec.devices[j - 1]))
    return plan


def _read_link_stats(spec: RunSpec, work: Path) -> dict[str, dict]:
    import json

    out: dict[str, dict] = {}
    if not spec.proxies:
        return out
    for device in spec.devices:
        path = work / f"link-{device}.json"
        if path.is_file():
            out[device] = json.loads(path.read_text())
    return out
