"""``segy:PATH``: shot gathers from SEG-Y files (segyio), one sample per field record.

The layout read (and written by ``write_segy``):

* ``PATH`` is one SEG-Y file, or a folder whose ``*.sgy`` / ``*.segy`` files are all read
  (in natural order). A file may hold one record or many, and a record may span files:
  traces are grouped by their headers, not by where they sit.
* A sample is one field record: every trace with the same field record number (FFID, trace
  header bytes 9-12). It holds the 5 shots x 70 receivers of one acquisition. Its sample id
  is ``ffid-<FFID>``, the same on every device reading the same files.
* Within a record, shots are ordered by (SourceX, EnergySourcePoint) ascending (bytes 73-76
  and 17-20: west to east) and receivers by channel (TraceNumber, bytes 13-16) ascending.
  Every (shot, channel) pair must appear exactly once.
* Every trace has 1000 samples at 1 ms (the data contract); big-endian, IBM or IEEE floats.

Records are replayed in ascending FFID, paced like ``openfwi:`` (``rate 0``: as fast as
possible). A record that breaks the layout is refused when the source opens, naming it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import segyio

from epic.edge.sources.base import Clock, Pacer, Shot, Slot, Source
from epic.shared.errors import DataError
from epic.shared.geometry import CONTRACT, Geometry

__all__ = ["SegySource", "write_segy"]

_F = segyio.TraceField


def _natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "no such SEG-Y file or folder")
    found = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".sgy", ".segy")]
    if not found:
        raise DataError(path, "holds no .sgy or .segy files")
    return sorted(found, key=_natural)


class SegySource(Source):
    def __init__(
        self,
        path: Path | str,
        receivers: tuple[int, int],
        rate: float,
        *,
        geometry: Geometry = CONTRACT,
        clock: Clock = time.time_ns,
    ) -> None:
        path = Path(path)
        self.spec = f"segy:{path}"
        self.receivers = receivers
        self.rate = rate
        self.skipped = 0
        self._clock = clock
        self._geometry = geometry
        self._handles: list[segyio.SegyFile] = []
        try:
            self._records = self._index(_files(path))
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path) -> segyio.SegyFile:
        try:
            handle = segyio.open(str(path), "r", ignore_geometry=True)
        except (RuntimeError, OSError, ValueError) as exc:
            raise DataError(path, f"not a readable SEG-Y file ({exc})") from exc
        self._handles.append(handle)
        g = self._geometry
        dt_us = segyio.tools.dt(handle, fallback_dt=0)
        if len(handle.samples) != g.nt or round(dt_us) != round(g.dt_s * 1e6):
            raise DataError(
                path,
                f"traces of {len(handle.samples)} samples at {dt_us:g} us; "
                f"the contract is {g.nt} at {g.dt_s * 1e6:g} us",
            )
        return handle

    def _index(self, files: list[Path]) -> dict[int, np.ndarray]:
        """FFID -> ``[shots, receivers, 2]`` (file number, trace number) in layout order."""
        columns = []
        for n, path in enumerate(files):
            handle = self._open(path)
            fields = (_F.FieldRecord, _F.SourceX, _F.EnergySourcePoint, _F.TraceNumber)
            heads = [handle.attributes(f)[:].astype(np.int64) for f in fields]
            where = np.stack([np.full(handle.tracecount, n), np.arange(handle.tracecount)], 1)
            columns.append(np.column_stack([*heads, where]))
        table = np.concatenate(columns) if columns else np.zeros((0, 6), np.int64)
        g = self._geometry
        records: dict[int, np.ndarray] = {}
        for ffid in np.unique(table[:, 0]):
            rows = table[table[:, 0] == ffid]
            shots, shot_of = np.unique(rows[:, 1:3], axis=0, return_inverse=True)
            channels, channel_of = np.unique(rows[:, 3], return_inverse=True)
            what = f"field record {ffid}"
            if len(shots) != g.n_shots or len(channels) != g.n_receivers:
                raise DataError(
                    files[int(rows[0, 4])],
                    f"{what} has {len(shots)} shots x {len(channels)} channels, "
                    f"expected {g.n_shots} x {g.n_receivers}",
                )
            pairs = shot_of.ravel() * len(channels) + channel_of.ravel()
            if len(rows) != g.n_shots * g.n_receivers or len(np.unique(pairs)) != len(rows):
                raise DataError(
                    files[int(rows[0, 4])], f"{what} lacks or repeats a (shot, channel) trace"
                )
            where = np.zeros((g.n_shots, g.n_receivers, 2), np.int64)
            where[shot_of.ravel(), channel_of.ravel()] = rows[:, 4:6]
            records[int(ffid)] = where
        if not records:
            raise DataError(files[0], "holds no traces")
        return records

    def __len__(self) -> int:
        return len(self._records)

    def slots(self) -> Iterator[Slot]:
        pacer = Pacer(self.rate, self._clock)
        for ffid in sorted(self._records):
            yield Slot(f"ffid-{ffid}", pacer.next_due(), ffid)

    def read(self, slot: Slot) -> Shot:
        where = self._records[slot.key]
        a, b = self.receivers
        block = np.empty((where.shape[0], self._geometry.nt, b - a), np.float32)
        for s in range(where.shape[0]):
            for r in range(a, b):
                file, trace = where[s, r]
                block[s, :, r - a] = self._handles[file].trace[int(trace)]
        if not np.isfinite(block).all():
            raise DataError(self.spec, f"field record {slot.key} holds NaN or infinite samples")
        return Shot(slot.sample_id, self._acquired(slot), block, None, self.receivers)

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "rate_hz": self.rate, "records": len(self)}

    def close(self) -> None:
        for handle in self._handles:
            handle.close()
        self._handles.clear()


def write_segy(
    path: Path | str, records: Mapping[int, np.ndarray], geometry: Geometry = CONTRACT
) -> Path:
    """Write ``{ffid: waveforms [5, 1000, 70]}`` as one IEEE-float SEG-Y file in the layout
    ``SegySource`` reads (source and receiver X in metres, channels from 1)."""
    g = geometry
    path = Path(path)
    spec = segyio.spec()
    spec.format = 5
    spec.samples = [i * g.dt_s * 1000 for i in range(g.nt)]  # in ms, as segyio expects
    spec.tracecount = len(records) * g.n_shots * g.n_receivers
    with segyio.create(str(path), spec) as f:
        i = 0
        for ffid, data in records.items():
            data = np.asarray(data, dtype=np.float32)
            if data.shape != g.data_shape:
                raise ValueError(f"record {ffid}: shape {data.shape}, expected {g.data_shape}")
            for s, src in enumerate(g.source_columns):
                for r, rec in enumerate(g.receiver_columns):
                    f.header[i] = {
                        _F.FieldRecord: int(ffid),
                        _F.TraceNumber: r + 1,
                        _F.EnergySourcePoint: s + 1,
                        _F.SourceX: round(src * g.spacing_m),
                        _F.GroupX: round(rec * g.spacing_m),
                        _F.offset: round((rec - src) * g.spacing_m),
                        _F.TRACE_SEQUENCE_FILE: i + 1,
                        _F.TRACE_SAMPLE_COUNT: g.nt,
                        _F.TRACE_SAMPLE_INTERVAL: round(g.dt_s * 1e6),
                    }
                    f.trace[i] = np.ascontiguousarray(data[s, :, r])
                    i += 1
    return path
