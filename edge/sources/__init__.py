"""Stream sources for an edge device: ``sim:FAMILY``, ``openfwi:DIR``, ``segy:PATH``.

``open_source(spec, receivers, rate, ...)`` parses the source string and opens it for one
device's receiver block; a bad string raises one ``OptionError`` line, unusable data one
``DataError`` line.
"""

from __future__ import annotations

import time
from pathlib import Path

from epic.edge.sources.base import Clock, Shot, Slot, Source
from epic.shared.errors import OptionError
from epic.shared.physics.families import FAMILIES
from epic.shared.pool import DEFAULT_SIZE

__all__ = ["KINDS", "Shot", "Slot", "Source", "open_source"]

KINDS = ("sim", "openfwi", "segy")


def open_source(
    spec: str,
    receivers: tuple[int, int],
    rate: float,
    *,
    start_slot: int | None = None,
    pool_size: int = DEFAULT_SIZE,
    pool_seed: int = 0,
    cache_dir: Path | str | None = None,
    progress: bool = False,
    clock: Clock = time.time_ns,
) -> Source:
    """Open ``spec`` (``KIND:ARG``) for the device owning ``receivers`` (blocking: it may
    simulate a pool or index files)."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg or kind not in KINDS:
        raise OptionError(
            spec, "source must be sim:FAMILY, openfwi:DIR or segy:PATH (e.g. sim:flatfault-a)"
        )
    if rate < 0:
        raise OptionError(spec, f"rate {rate} Hz must be >= 0")
    if start_slot is not None and kind != "sim":
        raise OptionError(spec, "a start slot applies to sim: sources only")
    if kind == "sim":
        from epic.edge.sources.sim import SimSource

        if arg not in FAMILIES:
            raise OptionError(spec, f"unknown family; choose one of {', '.join(FAMILIES)}")
        return SimSource(
            arg,
            receivers,
            rate,
            start_slot=start_slot,
            pool_size=pool_size,
            pool_seed=pool_seed,
            cache_dir=cache_dir,
            progress=progress,
            clock=clock,
        )
    if kind == "openfwi":
        from epic.edge.sources.openfwi import OpenFWISource

        return OpenFWISource(arg, receivers, rate, clock=clock)
    from epic.edge.sources.segy import SegySource

    return SegySource(arg, receivers, rate, clock=clock)
