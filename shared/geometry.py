"""Acquisition geometry: OpenFWI's published acquisition (docs/data.md), validated on construction.

Grid rows are depth (z), columns are distance along the line (x). Every index is a grid
cell; physical distances are ``index * spacing``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["CONTRACT", "Geometry", "GeometryError", "GeometryWarning"]


class GeometryError(ValueError):
    """A geometry parameter is impossible; the message names it and its value."""


class GeometryWarning(UserWarning):
    """A geometry parameter is legal but physically doubtful."""


def _require(ok: bool, name: str, value: object, why: str) -> None:
    if not ok:
        raise GeometryError(f"{name}={value!r}: {why}")


@dataclass(frozen=True)
class Geometry:
    """Surface acquisition on a regular 2-D grid.

    Defaults are the data contract: a 70 x 70 grid of 10 m cells; five sources at grid
    columns 0, 17, 34, 52, 69 and one receiver per column, all at grid row 1 (10 m deep);
    1000 steps of 1 ms; a 15 Hz Ricker wavelet of unit amplitude peaking at 0.1 s;
    4th-order finite differences; absorbing boundaries (PML) on all four sides.
    """

    nz: int = 70
    nx: int = 70
    spacing_m: float = 10.0
    source_columns: tuple[int, ...] = (0, 17, 34, 52, 69)
    source_row: int = 1
    receiver_row: int = 1
    nt: int = 1000
    dt_s: float = 0.001
    peak_freq_hz: float = 15.0
    peak_time_s: float = 0.1
    accuracy: Literal[2, 4, 6, 8] = 4  # finite-difference order
    pml_width: int = 20
    v_min: float = 1500.0
    v_max: float = 4500.0
    # Receivers: one per grid column unless told otherwise.
    receiver_columns: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.receiver_columns:
            object.__setattr__(self, "receiver_columns", tuple(range(self.nx)))
        object.__setattr__(self, "source_columns", tuple(int(c) for c in self.source_columns))
        object.__setattr__(self, "receiver_columns", tuple(int(c) for c in self.receiver_columns))
        for name in ("nz", "nx", "nt"):
            value = getattr(self, name)
            _require(isinstance(value, int) and value >= 2, name, value, "must be an integer >= 2")
        for name in ("spacing_m", "dt_s", "peak_freq_hz", "peak_time_s", "v_min", "v_max"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, name, value, "must be finite and > 0")
        _require(self.v_max > self.v_min, "v_max", self.v_max, f"must exceed v_min={self.v_min}")
        _require(self.accuracy in (2, 4, 6, 8), "accuracy", self.accuracy, "must be 2, 4, 6 or 8")
        _require(self.pml_width >= 1, "pml_width", self.pml_width, "must be >= 1 (absorbing)")
        for name, row in (("source_row", self.source_row), ("receiver_row", self.receiver_row)):
            _require(0 <= row < self.nz, name, row, f"must lie in [0, {self.nz})")
        for name, cols in (
            ("source_columns", self.source_columns),
            ("receiver_columns", self.receiver_columns),
        ):
            _require(len(cols) >= 1, name, cols, "must not be empty")
            _require(all(0 <= c < self.nx for c in cols), name, cols, f"must lie in [0, {self.nx})")
            _require(len(set(cols)) == len(cols), name, cols, "must not repeat a column")
        _require(
            self.peak_time_s < self.nt * self.dt_s,
            "peak_time_s",
            self.peak_time_s,
            f"must fall inside the record ({self.nt * self.dt_s} s)",
        )
        # Dispersion: 4th-order stencils want >= ~4 cells per shortest wavelength; a Ricker
        # wavelet carries energy up to ~2.5x its peak frequency.
        cells = self.v_min / (2.5 * self.peak_freq_hz) / self.spacing_m
        if cells < 4:
            warnings.warn(
                f"{cells:.1f} cells per shortest wavelength (v_min={self.v_min}, "
                f"peak_freq_hz={self.peak_freq_hz}, spacing_m={self.spacing_m}): "
                "expect numerical dispersion",
                GeometryWarning,
                stacklevel=3,
            )

    @property
    def n_shots(self) -> int:
        return len(self.source_columns)

    @property
    def n_receivers(self) -> int:
        return len(self.receiver_columns)

    @property
    def data_shape(self) -> tuple[int, int, int]:
        """One sample's seismic data: ``[shots, time, receivers]``."""
        return (self.n_shots, self.nt, self.n_receivers)

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """One sample's velocity map: ``[1, nz, nx]``."""
        return (1, self.nz, self.nx)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Geometry:
        values = dict(values)
        for key in ("source_columns", "receiver_columns"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


CONTRACT = Geometry()
