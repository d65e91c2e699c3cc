"""Summary statistics of velocity maps, to compare generated families with real OpenFWI.

Every statistic is measured per map and summarised over a batch (``[n, 1, nz, nx]`` or
``[n, nz, nx]``, rows are depth, m/s):

- ``layers``: velocity bands down a column (interfaces + 1), median over columns. An
  interface is a run of consecutive rows whose vertical step exceeds ``STEP`` m/s, so a
  jump smoothed over a few rows counts once.
- ``thickness``: mean distance between consecutive interfaces (and the map's top and
  bottom), cells.
- ``v_top``, ``v_mid``, ``v_bottom``: mean velocity of the top row, the middle row, the
  bottom row; ``v_min``, ``v_max``: per-map extremes; ``v_range``: ``v_max - v_min``.
- ``step``: median velocity jump across an interface, m/s.
- ``rising``: fraction of interfaces where velocity increases downwards.
- ``relief``: how far an interface moves up and down across the line, cells: for each
  interface (k-th from the top, in the columns that have the map's usual count), the
  peak-to-peak of its depth, median over interfaces. Bend amplitude for curved layers,
  throw for faulted flat ones, zero for flat ones.
- ``turns``: local extrema of the first interface across the line (bends per 70 columns).
- ``lateral``: fraction of cells with a lateral step above ``STEP`` (0 for flat layers).
- ``broken_rows``: fraction of rows that are not constant along the line.
- ``jumps_per_row``: lateral steps (runs) in a row that has any, median; one per fault or
  interface crossing.
- ``width``: mean rows per interface run (1 for sharp interfaces, more when smoothed).
- ``distinct``: number of distinct velocities in a map.
- ``tv``: total variation, mean absolute step between neighbours (both directions), m/s.

``summarize`` returns the mean over maps of each; ``compare`` prints a table;
``read_zipped_maps`` reads real OpenFWI maps straight from their zip (OpenFWI is CC BY-NC-SA:
read a user's copy at run time, never store it or arrays derived from it in the project).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "STATISTICS",
    "STEP",
    "compare",
    "map_statistics",
    "per_map",
    "read_zipped_maps",
    "summarize",
]

STEP = 10.0  # m/s: a step smaller than this is not an interface (real layers differ by more)

STATISTICS = (
    "layers",
    "thickness",
    "v_top",
    "v_mid",
    "v_bottom",
    "v_min",
    "v_max",
    "v_range",
    "step",
    "rising",
    "relief",
    "turns",
    "lateral",
    "broken_rows",
    "jumps_per_row",
    "width",
    "distinct",
    "tv",
)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each run of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _column_interfaces(column: np.ndarray) -> list[tuple[float, float, int]]:
    """``(depth, jump, width)`` of each interface down one column."""
    steps = np.diff(column.astype(np.float64))
    out = []
    for a, b in _runs(np.abs(steps) > STEP):
        out.append(((a + b) / 2.0 + 0.5, float(column[b] - column[a]), b - a))
    return out


def map_statistics(m: np.ndarray) -> dict[str, float]:
    """Every statistic of one ``[nz, nx]`` map."""
    m = np.asarray(m, dtype=np.float64)
    nz, nx = m.shape
    columns = [_column_interfaces(m[:, j]) for j in range(nx)]
    counts = np.array([len(c) for c in columns])
    usual = int(np.median(counts))
    thickness: list[float] = []
    jumps: list[float] = []
    widths: list[int] = []
    for c in columns:
        edges = [0.0] + [d for d, _, _ in c] + [float(nz)]
        thickness.extend(np.diff(edges).tolist())
        jumps.extend(j for _, j, _ in c)
        widths.extend(w for _, _, w in c)
    jumps_arr = np.array(jumps) if jumps else np.zeros(1)
    # Relief: k-th interface depth across the columns that have the usual count.
    same = [np.array([d for d, _, _ in c]) for c in columns if len(c) == usual]
    relief, turns = 0.0, 0.0
    if usual > 0 and len(same) > 1:
        depths = np.stack(same)  # [columns, usual]
        relief = float(np.median(np.ptp(depths, axis=0)))
    firsts = np.array([c[0][0] for c in columns if c])
    if len(firsts) > 2:
        slope = np.sign(np.diff(firsts))
        slope = slope[slope != 0]
        turns = float(np.sum(slope[1:] != slope[:-1])) if len(slope) > 1 else 0.0
    lateral_mask = np.abs(np.diff(m, axis=1)) > STEP
    row_jumps = [len(_runs(row)) for row in lateral_mask if row.any()]
    return {
        "layers": float(np.median(counts) + 1),
        "thickness": float(np.mean(thickness)),
        "v_top": float(m[0].mean()),
        "v_mid": float(m[nz // 2].mean()),
        "v_bottom": float(m[-1].mean()),
        "v_min": float(m.min()),
        "v_max": float(m.max()),
        "v_range": float(np.ptp(m)),
        "step": float(np.median(np.abs(jumps_arr))),
        "rising": float(np.mean(jumps_arr > 0)),
        "relief": relief,
        "turns": turns,
        "lateral": float(lateral_mask.mean()),
        "broken_rows": float(np.mean(np.ptp(m, axis=1) > STEP)),
        "jumps_per_row": float(np.median(row_jumps)) if row_jumps else 0.0,
        "width": float(np.mean(widths)) if widths else 0.0,
        "distinct": float(len(np.unique(m))),
        "tv": float(np.abs(np.diff(m, axis=0)).mean() + np.abs(np.diff(m, axis=1)).mean()),
    }


def _as_maps(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps)
    return maps[:, 0] if maps.ndim == 4 else maps


def per_map(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Each statistic for each map of a batch: ``{name: [n]}``."""
    rows = [map_statistics(m) for m in _as_maps(maps)]
    return {k: np.array([r[k] for r in rows]) for k in STATISTICS}


def summarize(maps: np.ndarray) -> dict[str, float]:
    """Mean of each statistic over a batch of maps."""
    return {k: float(v.mean()) for k, v in per_map(maps).items()}


def compare(named: dict[str, np.ndarray]) -> str:
    """A plain-text table: one row per statistic, one column per named batch."""
    sums = {name: summarize(maps) for name, maps in named.items()}
    header = f"{'statistic':>14} " + " ".join(f"{n:>13}" for n in sums)
    lines = [header]
    for k in STATISTICS:
        lines.append(f"{k:>14} " + " ".join(f"{s[k]:13.3f}" for s in sums.values()))
    return "\n".join(lines)


def read_zipped_maps(path: Path | str, count: int | None = None) -> np.ndarray:
    """The first ``count`` maps (all if None) of an OpenFWI zip of ``vmodelK.npy`` arrays,
    in natural file order, as ``[n, 1, nz, nx]`` float32; nothing is extracted to disk."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith(".npy")]
        names.sort(key=lambda n: (len(n), n))  # vmodel2 before vmodel10
        parts: list[np.ndarray] = []
        for name in names:
            with archive.open(name) as handle:
                parts.append(np.load(handle))
            if count is not None and sum(len(p) for p in parts) >= count:
                break
    maps = np.concatenate(parts)
    return (maps if count is None else maps[:count]).astype(np.float32)
