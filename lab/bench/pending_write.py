"""What the centre's pending table costs a latent (``epic.central.pending``; docs/reliability.md).

    python -m epic.lab.bench.pending_write [--payload-bytes 600] [--devices 70]

On a real SQLite file (the map store, WAL), with ``PendingLatents``' own writer task:
1. per message, for rounds of 1, 10 and ``--devices`` latents (add, the write round, the
   commit): median and p95;
2. a burst of 5,000 adds: the event loop's own time per add, and the time until every one is
   committed;
3. removals as stored maps ask them (``used``: a shot's devices at a time), per row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from epic.central.pending import PendingLatents, PendingRow
from epic.central.store import MapStore
from epic.shared.wire import latent_topic


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95)]


async def measure(payload_bytes: int, devices: int) -> None:
    payload = os.urandom(payload_bytes)
    with tempfile.TemporaryDirectory() as tmp:
        store = MapStore(Path(tmp) / "centre.sqlite", "bench")
        await store.open()
        pending = PendingLatents(store, max_rows=10**6)
        await pending.open()
        writer = asyncio.create_task(pending.run())
        count = 0

        def row() -> PendingRow:
            nonlocal count
            count += 1
            sample, device = f"s{count // devices}", f"dev-{count % devices}"
            topic = str(latent_topic("bench", sample, device))
            return PendingRow(sample, device, topic, payload, time.time_ns())

        try:
            for batch in (1, 10, devices):
                per_message = []
                for _ in range(300 if batch == 1 else 60):
                    start = time.perf_counter()
                    for _ in range(batch):
                        await pending.add(row(), None)
                    await pending.flush(10)
                    per_message.append((time.perf_counter() - start) / batch * 1e6)
                print(
                    f"rounds of {batch:3d}: {statistics.median(per_message):7.1f} us a message "
                    f"(median), p95 {_p95(per_message):7.1f} us"
                )

            burst = 5000
            start = time.perf_counter()
            for _ in range(burst):
                await pending.add(row(), None)
            loop_us = (time.perf_counter() - start) / burst * 1e6
            await pending.flush(30)
            total_s = time.perf_counter() - start
            committed_us = total_s / burst * 1e6
            print(
                f"burst of {burst}: {loop_us:.1f} us of event-loop time an add; all committed "
                f"after {committed_us:.1f} us a message ({burst / total_s:,.0f}/s)"
            )

            shots = 60
            start = time.perf_counter()
            last = count // devices
            for shot in range(last - shots, last):
                pending.used(f"s{shot}", [f"dev-{i}" for i in range(devices)])
            await pending.flush(10)
            per_row = (time.perf_counter() - start) / (shots * devices) * 1e6
            print(f"removals: {per_row:.1f} us a row ({shots} shots x {devices} devices)")
        finally:
            writer.cancel()
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payload-bytes", type=int, default=600, help="one envelope's size")
    parser.add_argument("--devices", type=int, default=70, help="latents in one shot")
    args = parser.parse_args()
    if args.payload_bytes < 1 or args.devices < 1:
        parser.error("--payload-bytes and --devices must be >= 1")
    asyncio.run(measure(args.payload_bytes, args.devices))


if __name__ == "__main__":
    main()
