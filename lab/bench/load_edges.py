"""One process of the load run's edges: several whole ``EdgeDaemon`` s in one event loop.

Each device is a complete edge, as ``epic edge`` runs it: its own encoder (torch, one
thread), outbox file and MQTT connection (client id, retained status, Last Will,
heartbeat). Only the interpreter is shared, so that 70 devices fit on a 2-core machine.

All devices of all processes must fire the same shots, so the start is a rendezvous: each
process enters its daemons (loading encoders, opening outboxes), writes ``ready-<group>``
in the work folder, then waits for ``go.json`` (``{"start_slot": K}``) and starts every
device at slot ``K``; each then produces ``--max-samples`` shots at ``--rate`` (late shots
run late, none is skipped), drains its outbox and stops. The last line printed is
``stats {...}``: per device, what it produced and sent and what its outbox still holds.

    python -m epic.lab.bench.load_edges --bundle B --broker mqtt://127.0.0.1:PORT \\
        --devices dev-0,dev-1 \\
        --rate 2 --max-samples 60 --workdir DIR --group 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "run_group"]

log = logging.getLogger(__name__)
GO_FILE = "go.json"
GO_TIMEOUT_S = 300.0
ENTER_AT_ONCE = 4


async def _wait_go(workdir: Path) -> int:
    go = workdir / GO_FILE
    deadline = time.monotonic() + GO_TIMEOUT_S
    while not go.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {go} within {GO_TIMEOUT_S:.0f} s")
        await asyncio.sleep(0.05)
    return int(json.loads(go.read_text())["start_slot"])


async def _enter_all(daemons: list, stack: contextlib.AsyncExitStack) -> list:
    """Enter the daemons a few at a time (loading encoders is mostly waiting on files and
    torch's start-up, in threads); all entered, or none left open."""
    gate = asyncio.Semaphore(ENTER_AT_ONCE)

    async def enter(daemon: object) -> object:
        async with gate:
            return await daemon.__aenter__()  # type: ignore[attr-defined]

    results = await asyncio.gather(*(enter(d) for d in daemons), return_exceptions=True)
    for daemon, result in zip(daemons, results, strict=True):
        if not isinstance(result, BaseException):
            stack.push_async_exit(daemon)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return daemons


async def run_group(args: argparse.Namespace) -> dict[str, dict]:
    """Run the group's daemons from the agreed slot until each has sent everything."""
    from epic.edge.config import EdgeConfig
    from epic.edge.connection import BrokerEndpoint
    from epic.edge.daemon import EdgeDaemon

    endpoint = BrokerEndpoint.parse(args.broker)
    workdir = Path(args.workdir)
    given = {"heartbeat_s": args.heartbeat_s} if "heartbeat_s" in args else {}
    async with contextlib.AsyncExitStack() as stack:
        configs = []
        for device in args.devices.split(","):
            config = EdgeConfig(
                bundle=Path(args.bundle),
                device_id=device,
                broker=endpoint,
                source=f"sim:{args.family}",
                rate=args.rate,
                runtime="torch",
                threads=1,
                start_slot=0,  # replaced by the agreed slot below, before anything runs
                max_samples=args.max_samples,
                pool_size=args.pool_size,
                cache_dir=Path(args.cache_dir),
                outbox=workdir / f"outbox-{device}.sqlite",
                **given,
            )
            configs.append(config)
        daemons = await _enter_all([EdgeDaemon(c) for c in configs], stack)
        (workdir / f"ready-{args.group}").write_text(str(len(daemons)))
        start_slot = await _wait_go(workdir)
        for daemon in daemons:
            # SimSource reads its start slot when the producer asks for slots (in run()).
            daemon.source.start_slot = start_slot
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda: [d.request_stop() for d in daemons])
        await asyncio.gather(*(d.run() for d in daemons))
        return {
            d.device.id: {
                "produced": d.stats.samples_encoded,
                "rejected": d.stats.samples_rejected,
                "sent": d.stats.envelopes_sent,
                "outbox_depth": d.outbox.depth,
                "outbox_dropped": d.outbox.dropped,
                "skipped": d.source.skipped,
                "reconnects": d.stats.reconnects,
                "encode_ms_p95": d.stats.encode_percentiles()[1],
            }
            for d in daemons
        }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m epic.lab.bench.load_edges", description=__doc__.split("\n")[0]
    )
    p.add_argument("--bundle", required=True)
    p.add_argument("--broker", required=True)
    p.add_argument("--devices", required=True, help="comma-separated device ids")
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--max-samples", type=int, required=True)
    p.add_argument("--family", default="flatfault-a")
    p.add_argument("--pool-size", type=int, default=4)
    p.add_argument("--cache-dir", required=True, help="the shot pool's cache folder")
    p.add_argument("--workdir", required=True)
    p.add_argument("--group", type=int, default=0)
    # Not given: EdgeConfig's own heartbeat (or EPIC_EDGE_HEARTBEAT_S).
    p.add_argument("--heartbeat-s", type=float, default=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    torch.set_num_threads(1)
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stats = asyncio.run(run_group(args))
    print("stats " + json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
