"""Everything an edge daemon needs to run, checked once before it starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge.connection import BrokerEndpoint
from shared.data.errors import DataError
from shared.envelope import Compression, LatentDtype
from shared.pool import DEFAULT_SIZE

__all__ = ["MODES", "EdgeConfig"]

MODES = ("latent", "raw")
_RAW_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class EdgeConfig:
    bundle: Path
    device_id: str
    broker: BrokerEndpoint
    source: str
    rate: float = 1.0
    mode: str = "latent"
    runtime: str = "auto"
    dtype: str | None = None  # None: int8 for latents, float32 for raw blocks
    compress: str = "none"
    outbox: Path | None = None  # None: default_outbox_path(deployment, device)
    outbox_mb: float = 64.0
    heartbeat_s: float = 5.0  # the longest silence: then a heartbeat says "alive"
    stats_s: float = 60.0  # the longest between full heartbeats (every figure)
    max_samples: int | None = None
    threads: int = 1
    start_slot: int | None = None
    pool_size: int = DEFAULT_SIZE
    pool_seed: int = 0
    cache_dir: Path | None = None
    keepalive_s: int = 30
    backoff_min_s: float = 0.5
    backoff_max_s: float = 10.0
    # Envelopes published before waiting for their PUBACKs: hides a cellular round trip.
    window: int = 8
    progress: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise DataError(self.mode, f"mode must be one of {', '.join(MODES)}")
        if self.dtype is not None:
            try:
                LatentDtype.parse(self.dtype)
            except ValueError as exc:
                raise DataError(self.dtype, str(exc)) from None
            if self.mode == "raw" and self.dtype not in _RAW_DTYPES:
                raise DataError(self.dtype, "raw mode sends float32 or float16 waveforms")
        if self.compress.upper() not in Compression.__members__:
            raise DataError(self.compress, "compression must be none or zstd")
        checks = [
            (self.rate >= 0, "--rate", self.rate, "must be >= 0"),
            (self.outbox_mb > 0, "--outbox-mb", self.outbox_mb, "must be > 0"),
            (self.heartbeat_s > 0, "--heartbeat-s", self.heartbeat_s, "must be > 0"),
            (self.stats_s >= self.heartbeat_s, "--stats-s", self.stats_s,
             f"must be >= --heartbeat-s ({self.heartbeat_s})"),
            (self.max_samples is None or self.max_samples >= 0, "--max-samples",
             self.max_samples, "must be >= 0"),
            (self.threads >= 1, "--threads", self.threads, "must be >= 1"),
            (self.keepalive_s >= 1, "--keepalive", self.keepalive_s, "must be >= 1 s"),
            (0 < self.backoff_min_s <= self.backoff_max_s, "backoff",
             (self.backoff_min_s, self.backoff_max_s), "needs 0 < min <= max"),
            (self.window >= 1, "window", self.window, "must be >= 1"),
        ]  # fmt: skip
        for ok, name, value, why in checks:
            if not ok:
                raise DataError(name, f"{value} {why}")

    @property
    def wire_dtype(self) -> str:
        return self.dtype or ("float32" if self.mode == "raw" else "int8")

    @property
    def outbox_bytes(self) -> int:
        return int(self.outbox_mb * 1024 * 1024)
