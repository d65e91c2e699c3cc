"""Several edge daemons in one process, for the throughput runs with many edges.

Seventy ``epic edge`` processes (a Python interpreter and an ONNX or torch runtime each) do
not fit on a 2-core machine. Each device here is still a whole ``EdgeDaemon``: its own
encoder and encoder thread, outbox file and MQTT connection (client id, status, Last Will,
heartbeat), exactly as ``epic edge`` runs it; only the interpreter and event loop are
shared. SIGTERM/SIGINT stop them all; the process ends when every daemon has finished.

    python -m epic.lab.bench.edge_group --bundle B --broker mqtt://127.0.0.1:PORT \\
        --devices dev-0,dev-1 --source sim:flatfault-a --rate 20 --start-slot K \\
        --max-samples 40 --pool-size 32 --outbox-dir DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "run_group"]

log = logging.getLogger(__name__)


async def run_group(configs: Sequence[object]) -> None:
    """Run one ``EdgeDaemon`` per config in this event loop until all have finished."""
    from epic.edge.daemon import EdgeDaemon

    loop = asyncio.get_running_loop()
    async with contextlib.AsyncExitStack() as stack:
        daemons = [
            await stack.enter_async_context(EdgeDaemon(config))  # type: ignore[arg-type]
            for config in configs
        ]

        def stop_all() -> None:  # a signal handler only sets flags
            for daemon in daemons:
                daemon.request_stop()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_all)
        try:
            async with asyncio.TaskGroup() as tg:
                for daemon in daemons:
                    tg.create_task(daemon.run(), name=f"edge-{daemon.config.device_id}")
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m epic.lab.bench.edge_group", description=__doc__)
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--broker", required=True, help="mqtt://HOST:PORT")
    p.add_argument("--devices", required=True, help="comma-separated device ids")
    p.add_argument("--source", required=True, help="sim:FAMILY")
    p.add_argument("--outbox-dir", type=Path, required=True)
    # The edges' settings not given are EdgeConfig's own (or EPIC_EDGE_*), as for `epic edge`.
    no = argparse.SUPPRESS
    p.add_argument("--rate", type=float, default=no)
    p.add_argument("--mode", choices=("latent", "raw"), default=no)
    p.add_argument("--start-slot", type=int, default=no)
    p.add_argument("--max-samples", type=int, default=no)
    p.add_argument("--pool-size", type=int, default=no)
    p.add_argument("--heartbeat-s", type=float, default=no)
    return p


_SETTINGS = ("rate", "mode", "start_slot", "max_samples", "pool_size", "heartbeat_s")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiomqtt").setLevel(logging.WARNING)
    from pydantic import ValidationError

    from epic.edge.config import ENV_PREFIX, EdgeConfig
    from epic.edge.connection import BrokerEndpoint
    from epic.shared.errors import UserError
    from epic.shared.settings_refusal import settings_refusal

    given = {k: v for k, v in vars(args).items() if k in _SETTINGS}
    try:
        endpoint = BrokerEndpoint.parse(args.broker)
        configs = [
            EdgeConfig(
                bundle=args.bundle,
                device_id=device,
                broker=endpoint,
                source=args.source,
                outbox=args.outbox_dir / f"outbox-{device}.sqlite",
                **given,
            )
            for device in args.devices.split(",")
        ]
        asyncio.run(run_group(configs))
    except UserError as exc:  # a bad option or bundle: one line, as `epic edge` says it
        print(f"edge_group: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"edge_group: error: {settings_refusal(exc, ENV_PREFIX, None)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
