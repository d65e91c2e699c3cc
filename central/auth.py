"""Who may change state through the API: a bearer token from the configuration.

The REST API reads freely (the field network is the boundary, as for the page); the one
change it offers, deleting a sample's maps, needs ``Authorization: Bearer <token>`` with the
token of ``EPIC_CENTRAL_API_TOKEN`` (``--api-token``). Without a configured token the change
is disabled (403), whatever a client sends; a missing or wrong token is 401. The comparison
takes the same time whatever the token, and the token is never logged.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

__all__ = ["AUTH_RESPONSES", "require_token"]

_bearer = HTTPBearer(
    auto_error=False, description="The centre's API token (EPIC_CENTRAL_API_TOKEN)."
)
AUTH_RESPONSES: dict[int | str, dict] = {
    401: {"description": "no bearer token, or not the configured one"},
    403: {"description": "disabled: the centre has no API token configured"},
}


def require_token(
    conn: HTTPConnection,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """A FastAPI dependency: returns only for the configured bearer token."""
    token: str | None = conn.app.state.api_token
    if token is None:
        raise HTTPException(403, "disabled: this centre has no API token (EPIC_CENTRAL_API_TOKEN)")
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
