"""The centre's configuration: one ``CentralSettings``, from arguments or ``EPIC_CENTRAL_*``.

Everything the service needs to start is here, validated on construction, so a bad value
fails before any socket opens. The password is best given as ``EPIC_CENTRAL_PASSWORD``
(a command line is visible to every user of the machine).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from epic.central.database import is_url
from epic.shared.wire import parse_broker_urls

__all__ = [
    "BrokerAddress",
    "CentralSettings",
    "broker_address",
    "broker_addresses",
    "db_location",
    "default_db_path",
    "strong_token",
]

MIN_TOKEN_CHARS = 16


class BrokerAddress:
    """``mqtt://HOST:PORT`` or ``mqtts://HOST:PORT``, split (credentials in it, if any)."""

    def __init__(
        self,
        host: str,
        port: int,
        tls: bool,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.username, self.password = username, password

    def __repr__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def broker_address(url: str) -> BrokerAddress:
    """Parse a broker URL as the edge does (``epic.shared.wire.endpoint``); ``ValueError``
    says why. A list's first node (``broker_addresses``: all of them)."""
    return broker_addresses(url)[0]


def broker_addresses(urls: str) -> list[BrokerAddress]:
    """Every node of ``mqtt://n1:1883,mqtt://n2:1883`` (or the one of a single URL)."""
    return [
        BrokerAddress(u.host, u.port, u.tls, u.username, u.password)
        for u in parse_broker_urls(urls)
    ]


class CentralSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EPIC_CENTRAL_", extra="forbid")

    bundle: Path = Field(description="Deployment bundle folder (epic deploy).")
    broker: str = Field(
        "mqtt://127.0.0.1:1883",
        description="mqtt://HOST:PORT or mqtts://; a cluster's nodes comma-separated",
    )
    username: str | None = Field(None, description="broker user")
    password: SecretStr | None = Field(None, description="broker password")
    tls_ca: Path | None = Field(None, description="CA certificate for mqtts://")
    client_id: str | None = Field(None, description="default epic-central-<deployment>")
    deadline_ms: float = Field(2000.0, gt=0, description="T: per-sample time budget")
    min_devices: int | None = Field(None, ge=1, description="default: a majority, ceil(N/2)")
    clock: Literal["arrival", "synced"] = Field(
        "arrival", description="T counts from the first arrival here, or the edges' shot time"
    )
    db: str | None = Field(
        None,
        description="SQLite file or postgresql:// URL; default epic-central-<dep>.sqlite",
    )
    host: str = Field("127.0.0.1", description="web/API address")
    port: int = Field(8000, ge=0, le=65535, description="web/API port, 0: any free port")
    retention: int = Field(10_000, ge=1, description="maps kept in the store, newest")
    max_open_samples: int = Field(256, ge=1, description="buffer bound (open + ready samples)")
    refine_window_s: float = Field(60.0, ge=0, description="late latents re-decode this long")
    max_envelope_bytes: int = Field(
        4 * 1024 * 1024, ge=64, le=16 * 1024 * 1024, description="largest message accepted"
    )
    decode_batch_max: int = Field(16, ge=1, le=256, description="samples decoded together")
    threads: int = Field(0, ge=0, description="torch CPU threads, 0: all cores")
    decoder: Literal["auto", "onnx", "torch"] = Field(
        "auto", description="auto: onnxruntime when the bundle has central.onnx"
    )
    offline_after_s: float = Field(15.0, gt=0, description="no latent/heartbeat: late")
    truth: str | None = Field(None, description="sim:FAMILY: fill each map's SSIM")
    truth_pool_size: int | None = Field(None, ge=1, description="the edges' pool size")
    truth_pool_seed: int = Field(0, ge=0, description="the edges' pool seed")
    api_token: SecretStr | None = Field(
        None, description="bearer token for DELETE /api/maps/{id}; none: deleting is disabled"
    )
    max_live_clients: int = Field(32, ge=1, le=10_000, description="/ws/live clients at once")

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        broker_addresses(value)
        return value

    @field_validator("db", mode="before")
    @classmethod
    def _db_location(cls, value: object) -> object:
        return db_location(value)

    @field_validator("tls_ca")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value}: no such file")
        return value

    @field_validator("api_token")
    @classmethod
    def _token_strong(cls, value: SecretStr | None) -> SecretStr | None:
        return strong_token(value)

    @property
    def address(self) -> BrokerAddress:
        return broker_address(self.broker)

    @property
    def addresses(self) -> list[BrokerAddress]:
        """Every node of ``--broker``, in the order the centre tries them."""
        return broker_addresses(self.broker)

    def min_devices_for(self, n_devices: int) -> int:
        """``--min-devices`` or a majority of ``n_devices``; more than N is an error."""
        k = self.min_devices if self.min_devices is not None else math.ceil(n_devices / 2)
        if k > n_devices:
            raise ValueError(f"--min-devices {k} is more than the deployment's {n_devices}")
        return k

    def db_location(self, deployment: str) -> str:
        """The store's database: ``--db`` (a file or a URL), else the default file."""
        return self.db if self.db is not None else str(default_db_path(deployment))


def strong_token(value: SecretStr | None) -> SecretStr | None:
    """The API token, if it is one worth having; ``ValueError`` says why not."""
    if value is not None:
        token = value.get_secret_value()
        if len(token) < MIN_TOKEN_CHARS or token != token.strip() or len(set(token)) < 8:
            raise ValueError(
                f"the API token must be at least {MIN_TOKEN_CHARS} characters, no spaces "
                "around it and not a repeated pattern (make one: openssl rand -hex 32)"
            )
    return value


def db_location(value: object) -> object:
    """``--db``: a file given as a path, or a URL the store can drive."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) and "://" in value and not is_url(value):
        scheme = value.split("://", 1)[0]
        raise ValueError(f"{scheme}:// is not a database EPIC drives: use postgresql://")
    return value


def default_db_path(deployment: str, cwd: Path | None = None) -> Path:
    """``epic-central-<deployment>.sqlite`` in the current folder when it is writable (where
    the operator started the service, and finds it again), else in ``~/.local/state/epic``."""
    name = f"epic-central-{deployment}.sqlite"
    here = cwd or Path.cwd()
    if os.access(here, os.W_OK):
        return here / name
    state = Path.home() / ".local" / "state" / "epic"
    state.mkdir(parents=True, exist_ok=True)
    return state / name
