"""``epic api``'s configuration: from arguments or ``EPIC_API_*``, checked on construction."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from epic.central.database import is_url
from epic.central.settings import db_location, strong_token
from epic.shared.wire import ID_PATTERN

__all__ = ["ApiSettings"]


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EPIC_API_", extra="forbid")

    db: str = Field(description="the centres' database: a postgresql:// URL or a SQLite file")
    host: str = Field("127.0.0.1", description="web/API address")
    port: int = Field(8080, ge=0, le=65535, description="web/API port, 0: any free port")
    # NoDecode: EPIC_API_DEPLOYMENT=north,south, not JSON
    deployment: Annotated[list[str] | None, NoDecode] = Field(
        None, description="serve only these deployments; default: every one in the database"
    )
    api_token: SecretStr | None = Field(
        None, description="bearer token for deleting maps; none: deleting is disabled"
    )
    max_live_clients: int = Field(256, ge=1, le=10_000, description="live clients at once")

    @field_validator("db", mode="before")
    @classmethod
    def _db(cls, value: object) -> object:
        value = db_location(value)
        if isinstance(value, str) and not is_url(value):
            if value == ":memory:":
                raise ValueError(":memory: holds no centre's maps: name the centres' database")
            if not Path(value).is_file():
                raise ValueError(f"{value}: no such database file (a centre's --db makes it)")
        return value

    @field_validator("deployment", mode="before")
    @classmethod
    def _deployments(cls, value: object) -> object:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",") if name.strip()]
        for name in value if isinstance(value, list) else []:
            if not isinstance(name, str) or not ID_PATTERN.fullmatch(name):
                raise ValueError(f"{name!r} is not a deployment name")
        return value or None

    @field_validator("api_token")
    @classmethod
    def _token_strong(cls, value: SecretStr | None) -> SecretStr | None:
        return strong_token(value)
