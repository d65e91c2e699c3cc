"""Which receivers each edge device owns: contiguous blocks, west to east."""

from __future__ import annotations

__all__ = ["device_blocks", "device_ids"]


def device_blocks(n_devices: int, n_receivers: int = 70) -> list[range]:
    """Split ``n_receivers`` into ``n_devices`` contiguous blocks, sizes differing by at most
    one (the first ``n_receivers % n_devices`` blocks take the extra receiver)."""
    if not isinstance(n_devices, int) or not 1 <= n_devices <= n_receivers:
        raise ValueError(f"n_devices={n_devices!r}: must be an integer in [1, {n_receivers}]")
    base, extra = divmod(n_receivers, n_devices)
    blocks, start = [], 0
    for i in range(n_devices):
        stop = start + base + (1 if i < extra else 0)
        blocks.append(range(start, stop))
        start = stop
    return blocks


def device_ids(n_devices: int) -> list[str]:
    """Default ids, in receiver order: ``dev-0`` ... ``dev-<N-1>``."""
    return [f"dev-{i}" for i in range(n_devices)]
