"""The centre's HTTP face: REST for maps and devices, Prometheus metrics, the live WebSocket
feed and the monitor page's files. Everything it knows it asks a ``CentralView``. It reads
freely; the one change, deleting a sample's maps, needs the configured bearer token
(``central.auth``). At most ``max_live_clients`` live feeds at once; more are closed 1013.

No CORS middleware on purpose: the page is served from here, and nothing else in the field
should read the centre from a browser. The WebSocket, which CORS does not cover, checks the
``Origin`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path as FilePath
from typing import Annotated, Literal
from urllib.parse import urlsplit

import anyio
import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, WebSocket
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import HTTPConnection, Request
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from central.auth import AUTH_RESPONSES, require_token
from central.offline_docs import install_offline_docs
from central.render import MapPictures
from central.schemas import (
    DeviceEvent,
    DeviceList,
    Health,
    MapDeleted,
    MapDetail,
    MapEvent,
    MapList,
    MapSummary,
)
from central.store import StoreUnavailable
from central.view import CentralView

__all__ = ["create_app"]

STATIC_DIR = FilePath(__file__).parent / "static"
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# A client whose socket takes longer than this to accept one event is not reading: drop it.
WS_SEND_TIMEOUT_S = 10.0
WS_CLOSE_TIMEOUT_S = 2.0
# Why a client was dropped -> (close code, reason). 1013: try again later. The view ends a
# feed for a client that fell behind, and for every client when the centre stops.
DROP_CLOSE = {
    "behind": (1013, "feed ended: client fell behind, or the centre is stopping; reconnect"),
    "stalled": (1008, "not reading the live feed; dropped"),
}
FULL_CLOSE = (1013, "too many live clients; try again later")
# The page loads only its own files and talks only to its own origin (the field has no
# internet, and nothing else should be able to inject into the monitor).
PAGE_CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SampleId = Annotated[str, Path(pattern=ID_PATTERN, description="sample id, [A-Za-z0-9_.-]{1,64}")]
# Bounded above as well: SQLite integers are 64-bit, and a bigger one was a 500.
Version = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="a stored version; the newest when left out"),
]
NOT_FOUND: dict[int | str, dict] = {404: {"description": "no such map (or no such version)"}}


def _view(conn: HTTPConnection) -> CentralView:
    return conn.app.state.view


View = Annotated[CentralView, Depends(_view)]
router = APIRouter()


async def _find_map(view: CentralView, sample_id: str, version: int | None) -> MapDetail:
    detail = await view.get_map(sample_id, version)
    if detail is not None:
        return detail
    if version is not None and (newest := await view.get_map(sample_id)) is not None:
        raise HTTPException(
            404, f"sample {sample_id!r} has no version {version} (newest is {newest.version})"
        )
    raise HTTPException(404, f"no map stored for sample {sample_id!r}")


def _summary(detail: MapSummary) -> MapSummary:
    """The map without its velocities (events and lists stay small)."""
    return MapSummary.model_validate(detail.model_dump(exclude={"velocity"}))


@router.get(
    "/api/maps/latest",
    response_model=MapDetail,
    responses={404: {"description": "no map decoded yet"}},
    tags=["maps"],
)
async def latest_map(view: View) -> MapDetail:
    """The newest decoded map, with its velocities in m/s."""
    detail = await view.latest_map()
    if detail is None:
        raise HTTPException(404, "no map decoded yet")
    return detail


# Before "/api/maps/{sample_id}", which would otherwise take "a.b.png" as an id.
@router.get(
    "/api/maps/{sample_id}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the map as a picture"},
        **NOT_FOUND,
    },
    tags=["maps"],
)
async def map_png(
    request: Request, view: View, sample_id: SampleId, version: Version = None
) -> Response:
    """The map drawn with a perceptual colour map and a colour bar in m/s."""
    detail = await _find_map(view, sample_id, version)
    pictures: MapPictures = request.app.state.pictures
    png = await pictures.png(detail)
    # A named version never changes; "the newest" may.
    cache_control = "public, max-age=86400, immutable" if version is not None else "no-cache"
    return Response(png, media_type="image/png", headers={"Cache-Control": cache_control})


@router.get(
    "/api/maps/{sample_id}",
    response_model=MapDetail,
    responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND},
    tags=["maps"],
)
async def get_map(
    view: View,
    sample_id: SampleId,
    version: Version = None,
    format: Annotated[
        Literal["json", "npy"],
        Query(description="npy: the float32 nz x nx array in m/s, as numpy.save writes it"),
    ] = "json",
) -> MapDetail | Response:
    """One sample's map: its newest version unless ``version`` is given."""
    detail = await _find_map(view, sample_id, version)
    if format == "json":
        return detail
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(detail.velocity, dtype=np.float32), allow_pickle=False)
    name = f"{detail.sample_id}_v{detail.version}.npy"
    return Response(
        buffer.getvalue(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/api/maps", response_model=MapList, tags=["maps"])
async def list_maps(
    view: View,
    limit: Annotated[int, Query(ge=1, le=500, description="how many, newest first")] = 50,
    before: Annotated[
        str | None, Query(pattern=ID_PATTERN, description="only maps stored before this sample")
    ] = None,
) -> MapList:
    """Recent maps without their velocities, newest first."""
    return MapList(maps=[_summary(m) for m in await view.list_maps(limit, before)])


@router.delete(
    "/api/maps/{sample_id}",
    response_model=MapDeleted,
    dependencies=[Depends(require_token)],
    responses={**AUTH_RESPONSES, 404: {"description": "no map stored for this sample"},
               503: {"description": "the database refused the change"}},
    tags=["maps"],
)  # fmt: skip
async def delete_map(view: View, sample_id: SampleId) -> MapDeleted:
    """Delete every version of a sample's map (needs ``Authorization: Bearer <token>``)."""
    try:
        deleted = await view.delete_map(sample_id)
    except StoreUnavailable as exc:
        raise HTTPException(503, f"not deleted: {exc}") from None
    if deleted == 0:
        raise HTTPException(404, f"no map stored for sample {sample_id!r}")
    return MapDeleted(sample_id=sample_id, versions=deleted)


@router.get("/api/devices", response_model=DeviceList, tags=["devices"])
async def devices(view: View) -> DeviceList:
    """Every device: status, counters, arrival delays and the edge's own heartbeat."""
    return DeviceList(devices=view.devices())


@router.get("/api/health", response_model=Health, tags=["service"])
async def health(view: View) -> Health:
    """The service's own state: broker link, buffer depth, decode latency."""
    return view.health()


# A plain def: FastAPI runs it in a worker thread, off the event loop.
@router.get("/metrics", response_class=Response, tags=["service"])
def metrics(view: View) -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(view.metrics), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


def _same_origin(websocket: WebSocket) -> bool:
    """Browsers always send Origin; tools usually do not, and are let in."""
    origin = websocket.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == websocket.headers.get("host")


async def _send_events(websocket: WebSocket, events: AsyncIterator[dict]) -> str:
    """Forward events until the view ends the feed; the reason the client is dropped."""
    async for event in events:
        try:
            async with asyncio.timeout(WS_SEND_TIMEOUT_S):
                await websocket.send_text(json.dumps(event))
        except TimeoutError:
            return "stalled"
    return "behind"  # the view ended the feed


async def _until_disconnect(websocket: WebSocket) -> None:
    # The feed is one-way; reading is how a client's departure is noticed between events.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _serve_feed(websocket: WebSocket, events: AsyncIterator[dict]) -> str | None:
    """Run sender and listener together; the drop reason, or None if the client left.

    An anyio task group rather than bare asyncio tasks: Starlette (and its test client)
    cancel the handler through anyio cancel scopes, which then reach both halves cleanly.
    """
    reason: str | None = None
    async with anyio.create_task_group() as group:

        async def send() -> None:
            nonlocal reason
            # A failed send means the client is gone: nothing to report.
            with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
                reason = await _send_events(websocket, events)
            group.cancel_scope.cancel()

        async def listen() -> None:
            await _until_disconnect(websocket)
            group.cancel_scope.cancel()

        group.start_soon(send, name="ws-live-send")
        group.start_soon(listen, name="ws-live-listen")
    return reason


@router.websocket("/ws/live")
async def live(websocket: WebSocket, view: View) -> None:
    """A snapshot (latest map, every device), then a JSON event per map and device change."""
    if not _same_origin(websocket):
        await websocket.close(code=1008, reason="cross-origin WebSocket refused")
        return
    state = websocket.app.state
    await websocket.accept()
    if state.live_clients >= state.max_live_clients:
        # Accepted first so that the client reads why (a refused handshake is a bare 403).
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected):
            await websocket.close(code=FULL_CLOSE[0], reason=FULL_CLOSE[1])
        return
    state.live_clients += 1
    try:
        await _live(websocket, view)
    finally:
        state.live_clients -= 1


async def _live(websocket: WebSocket, view: CentralView) -> None:
    try:
        # Subscribe before the snapshot, so nothing falls between the two.
        async with view.subscribe() as events:
            latest = await view.latest_map()
            if latest is not None:
                await websocket.send_text(MapEvent(map=_summary(latest)).model_dump_json())
            for device in view.devices():
                await websocket.send_text(DeviceEvent(device=device).model_dump_json())
            reason = await _serve_feed(websocket, events)
    except (WebSocketDisconnect, WebSocketDisconnected):
        return
    if reason is not None:
        code, text = DROP_CLOSE[reason]
        try:
            async with asyncio.timeout(WS_CLOSE_TIMEOUT_S):
                await websocket.close(code=code, reason=text)
        except (TimeoutError, WebSocketDisconnect, WebSocketDisconnected):
            pass  # it was going anyway


def _version() -> str:
    try:
        return metadata.version("epic-fwi")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def create_app(
    view: CentralView,
    png_cache_size: int = 64,
    api_token: str | None = None,
    max_live_clients: int = 32,
) -> FastAPI:
    """The API and monitor for one running centre; ``api_token`` enables deleting maps."""
    app = FastAPI(
        title="EPIC central",
        version=_version(),
        description=(
            f"Deployment `{view.deployment}`: velocity maps decoded from the edge devices' "
            "latents, device health, and a live feed. Read-only, but for deleting a sample's "
            "maps with the configured bearer token."
        ),
        docs_url=None,  # served from local files below, not a CDN
        redoc_url=None,
    )
    app.state.view = view
    app.state.api_token = api_token
    app.state.max_live_clients = max_live_clients
    app.state.live_clients = 0
    app.state.pictures = MapPictures(png_cache_size)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_offline_docs(app)
    return app
