"""What the API answers while the centre starts: its port is served from the first second
(``epic.central.listener``), but the model takes a few more to load and profile. Until then every
route that needs the service answers 503 with the stage, and ``Retry-After``. A standby centre
(``epic.central.leadership``) answers the same way, with ``"status": "standby"``."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.requests import Request

from epic.central.view import ServiceStarting

__all__ = ["RETRY_AFTER_S", "STARTING_RESPONSES", "answer_starting"]

RETRY_AFTER_S = 2
STARTING_RESPONSES: dict[int | str, dict] = {
    503: {
        "description": 'the centre is starting or a standby: {"status": "starting" or '
        '"standby", "stage": ..., "detail": ...}; Retry-After says when to ask again'
    }
}


async def answer_starting(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for ``ServiceStarting``."""
    stage = exc.stage if isinstance(exc, ServiceStarting) else "starting"
    if stage.startswith("standby"):  # epic.central.leadership: another centre is active
        status, detail = "standby", f"this centre is a {stage}; ask the active one"
    else:
        status, detail = "starting", f"the centre is starting ({stage}); try again in a few seconds"
    return JSONResponse(
        {"status": status, "stage": stage, "detail": detail},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
