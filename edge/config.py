"""An edge daemon's configuration: one ``EdgeConfig``, from arguments or ``EPIC_EDGE_*``.

Everything an edge daemon needs to run, checked once before it starts, with every default
set here and nowhere else (``epic edge`` passes only the options given on its command line,
so that the environment fills the others). The password is best given as
``EPIC_EDGE_PASSWORD`` (a command line is visible to every user of the device);
``EPIC_MQTT_PASSWORD``, its earlier name, is still read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, InstanceOf, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from epic.edge.connection import BrokerEndpoint
from epic.shared.errors import OptionError
from epic.shared.pool import DEFAULT_SIZE
from epic.shared.wire import Compression, LatentDtype

__all__ = ["ENV_PREFIX", "MODES", "EdgeConfig"]

ENV_PREFIX = "EPIC_EDGE_"
MODES = ("latent", "raw")
_RAW_DTYPES = ("float32", "float16")

# The bounds a number must keep, with the words the refusal says: "--rate: -1.0 must be >= 0".
_BOUNDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "rate": (lambda v: v >= 0, "must be >= 0"),
    "outbox_mb": (lambda v: v > 0, "must be > 0"),
    "heartbeat_s": (lambda v: v >= 0.05, "must be >= 0.05"),
    "max_samples": (lambda v: v is None or v >= 0, "must be >= 0"),
    "threads": (lambda v: v >= 1, "must be >= 1"),
    "start_slot": (lambda v: v is None or v >= 0, "must be >= 0"),
    "pool_size": (lambda v: v >= 1, "must be >= 1"),
    "pool_seed": (lambda v: v >= 0, "must be >= 0"),
    "keepalive_s": (lambda v: v >= 1, "must be >= 1 s"),
    "window": (lambda v: v >= 1, "must be >= 1"),
}


class EdgeConfig(BaseSettings):
    # frozen: one configuration for the daemon's life (a changed copy: model_copy(update=)).
    # populate_by_name: the password's keyword is ``password``, its variables the aliases.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True
    )

    bundle: Path = Field(description="Deployment bundle folder (epic deploy).")
    device_id: str = Field(description="This device's id (dev-0 ...).")
    source: str = Field(description="sim:FAMILY, openfwi:DIR or segy:PATH")
    username: str | None = Field(None, description="MQTT user name")
    password: SecretStr | None = Field(
        None,
        description="MQTT password",
        validation_alias=AliasChoices(f"{ENV_PREFIX}PASSWORD", "EPIC_MQTT_PASSWORD"),
    )
    tls_ca: Path | None = Field(None, description="CA certificate: connect with TLS")
    # After the credentials: its validator folds them (and the CA) into the endpoint.
    # NoDecode: EPIC_EDGE_BROKER is a URL, not the JSON pydantic-settings would expect.
    broker: Annotated[InstanceOf[BrokerEndpoint], NoDecode] = Field(
        description="mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS; a cluster's nodes "
        "comma-separated"
    )
    rate: float = Field(1.0, description="shots per second, 0: as fast as possible")
    mode: str = Field("latent", description="latent: encode; raw: send the raw block")
    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="auto: onnxruntime when installed and bundled, else torch"
    )
    dtype: str | None = Field(None, description="wire dtype; default int8, float32 when raw")
    compress: str = Field("none", description="payload compression: none or zstd")
    outbox: Path | None = Field(
        None, description="outbox file; default ~/.local/state/epic/outbox-<dep>-<device>.sqlite"
    )
    outbox_mb: float = Field(64.0, description="outbox bound; the oldest envelopes go first")
    heartbeat_s: float = Field(5.0, description="the longest silence: then a heartbeat")
    stats_s: float = Field(60.0, description="the longest between full heartbeats")
    max_samples: int | None = Field(None, description="stop after this many samples are sent")
    threads: int = Field(1, description="CPU threads for the encoder")
    start_slot: int | None = Field(None, description="sim: start at this slot, skip none")
    pool_size: int = Field(DEFAULT_SIZE, description="sim: shots in the cached pool")
    pool_seed: int = Field(0, description="sim: the pool's seed")
    cache_dir: Path | None = Field(
        None, description="sim: the pool cache; default $EPIC_CACHE/pool or ~/.cache/epic/pool"
    )
    keepalive_s: int = Field(30, description="MQTT keepalive, s")
    backoff_min_s: float = Field(0.5, description="first wait before reconnecting, s")
    backoff_max_s: float = Field(10.0, description="longest wait before reconnecting, s")
    # Envelopes published before waiting for their PUBACKs: hides a cellular round trip.
    window: int = Field(8, description="envelopes in flight before their PUBACKs")
    progress: bool = Field(False, description="a progress bar while the sim pool is made")

    @field_validator(*_BOUNDS)
    @classmethod
    def _in_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        ok, why = _BOUNDS[str(info.field_name)]
        if not ok(value):
            raise ValueError(f"{value} {why}")
        return value

    @field_validator("stats_s")
    @classmethod
    def _stats_after_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        heartbeat = info.data.get("heartbeat_s")
        if heartbeat is not None and value < heartbeat:
            raise ValueError(f"{value} must be >= --heartbeat-s ({heartbeat})")
        return value

    @field_validator("backoff_max_s")
    @classmethod
    def _backoff(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("backoff_min_s")
        if low is not None and not 0 < low <= value:
            raise ValueError(f"{(low, value)} needs 0 < min <= max")
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str) -> str:
        if value not in MODES:
            raise ValueError(f"{value}: mode must be one of {', '.join(MODES)}")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        LatentDtype.parse(value)  # its ValueError says which dtypes there are
        if info.data.get("mode") == "raw" and value not in _RAW_DTYPES:
            raise ValueError(f"{value}: raw mode sends float32 or float16 waveforms")
        return value

    @field_validator("compress")
    @classmethod
    def _compress(cls, value: str) -> str:
        if value.upper() not in Compression.__members__:
            raise ValueError(f"{value}: compression must be none or zstd")
        return value

    @field_validator("tls_ca")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value}: no such CA file")
        return value

    @field_validator("broker", mode="before")
    @classmethod
    def _endpoint(cls, value: Any, info: ValidationInfo) -> Any:
        """A URL, or an endpoint already made; either way with the credentials and CA given
        beside it (they win over the URL's own)."""
        username, tls_ca = info.data.get("username"), info.data.get("tls_ca")
        secret = info.data.get("password")
        password = secret.get_secret_value() if secret is not None else None
        if isinstance(value, BrokerEndpoint):
            if tls_ca is not None:
                value = replace(value, tls=True, tls_ca=tls_ca)
            return replace(
                value, username=username or value.username, password=password or value.password
            )
        try:
            return BrokerEndpoint.parse(str(value), username, password, tls_ca)
        except OptionError as exc:  # "--broker" is the field's name: the why is enough
            raise ValueError(exc.problem) from None

    @property
    def wire_dtype(self) -> str:
        return self.dtype or ("float32" if self.mode == "raw" else "int8")

    @property
    def outbox_bytes(self) -> int:
        return int(self.outbox_mb * 1024 * 1024)
