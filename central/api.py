"""The HTTP face of a centre (one deployment) or of ``epic api`` (every deployment in a
database): REST for maps and devices, Prometheus metrics, the monitor page's files, and the
live WebSocket feed (``epic.central.live_feed``). Everything it knows it asks a
``CentralView``, one per deployment (``epic.central.deployments``).

Every deployment's routes are under ``/api/deployments/{deployment}/``; the shorter
``/api/maps``... answer for the only deployment served (a centre's own), and with several
say which there are (409). It reads freely; the one change, deleting a sample's maps, needs the
configured bearer token (``epic.central.auth``).

No CORS middleware on purpose: the page is served from here, and nothing else in the field
should read the centre from a browser. The WebSocket, which CORS does not cover, checks the
``Origin`` instead.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from importlib import metadata
from pathlib import Path as FilePath
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import HTTPConnection, Request

from epic.central import live_feed
from epic.central.auth import AUTH_RESPONSES, require_token
from epic.central.deployments import Deployments, OneDeployment, UnknownDeployment
from epic.central.offline_docs import install_offline_docs
from epic.central.render import MapPictures
from epic.central.schemas import (
    DeploymentList,
    DeviceList,
    Health,
    MapDeleted,
    MapDetail,
    MapList,
    map_summary,
)
from epic.central.starting import STARTING_RESPONSES, answer_starting
from epic.central.store import StoreUnavailable
from epic.central.view import CentralView, ServiceStarting
from epic.shared.wire import ID_PATTERN, ID_REGEX, ID_SPEC

__all__ = ["create_app"]

STATIC_DIR = FilePath(__file__).parent / "static"
# The page loads only its own files and talks only to its own origin (the field has no
# internet, and nothing else should be able to inject into the monitor).
PAGE_CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

SampleId = Annotated[str, Path(pattern=ID_REGEX, description=f"sample id, {ID_SPEC}")]
# Bounded above as well: SQLite integers are 64-bit, and a bigger one was a 500.
Version = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="a stored version; the newest when left out"),
]
NOT_FOUND: dict[int | str, dict] = {404: {"description": "no such map (or no such version)"}}
# Every map endpoint takes ?format=: these two answer json or npy, the list json only, the
# picture png only; anything else is a 422 naming the choices (never silently ignored).
MapFormat = Annotated[
    Literal["json", "npy"],
    Query(description="npy: the float32 nz x nx array in m/s, as numpy.save writes it"),
]
NPY_RESPONSE: dict[int | str, dict] = {
    200: {
        "content": {"application/octet-stream": {}},
        "description": "JSON, or with ?format=npy the array",
    }
}


def _deployments(conn: HTTPConnection) -> Deployments:
    return conn.app.state.deployments


DeploymentId = Annotated[
    str, Path(pattern=ID_REGEX, description=f"the deployment (its bundle's), {ID_SPEC}")
]


def _view(conn: HTTPConnection) -> CentralView:
    """The deployment the path names (``/api/deployments/{deployment}/...``), or the only
    one served (``/api/...``)."""
    deployments: Deployments = conn.app.state.deployments
    name = conn.path_params.get("deployment")
    if name is not None and not ID_PATTERN.fullmatch(name):
        # _deployment_param's own 422 would come only after this dependency had run
        raise HTTPException(422, f"{name!r} is not a deployment name ({ID_SPEC})")
    try:
        return deployments.default() if name is None else deployments.view(name)
    except UnknownDeployment as exc:
        raise HTTPException(409 if name is None and exc.known else 404, str(exc)) from None


def _deployment_param(deployment: DeploymentId) -> None:
    """Declares (and checks) the prefix's ``{deployment}``; ``_view`` reads it."""


View = Annotated[CentralView, Depends(_view)]
router = APIRouter(responses=STARTING_RESPONSES)  # one deployment's routes
service_router = APIRouter()  # the process's own
NO_DEPLOYMENT: dict[int | str, dict] = {
    404: {"description": "no such deployment"},
    409: {"description": "several deployments served: name one"},
}


async def _find_map(view: CentralView, sample_id: str, version: int | None) -> MapDetail:
    detail = await view.get_map(sample_id, version)
    if detail is not None:
        return detail
    if version is not None and (newest := await view.get_map(sample_id)) is not None:
        raise HTTPException(
            404, f"sample {sample_id!r} has no version {version} (newest is {newest.version})"
        )
    raise HTTPException(404, f"no map stored for sample {sample_id!r}")


@router.get(
    "/maps/latest",
    response_model=MapDetail,
    responses={**NPY_RESPONSE, 404: {"description": "no map decoded yet"}},
    tags=["maps"],
)
async def latest_map(view: View, format: MapFormat = "json") -> MapDetail | Response:
    """The newest decoded map, with its velocities in m/s."""
    detail = await view.latest_map()
    if detail is None:
        raise HTTPException(404, "no map decoded yet")
    return detail if format == "json" else _npy(detail)


# Before "/maps/{sample_id}", which would otherwise take "a.b.png" as an id.
@router.get(
    "/maps/{sample_id}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the map as a picture"},
        **NOT_FOUND,
    },
    tags=["maps"],
)
async def map_png(
    request: Request,
    view: View,
    sample_id: SampleId,
    version: Version = None,
    format: Annotated[
        Literal["png"], Query(description="png only: the JSON and npy forms are at the id")
    ] = "png",
) -> Response:
    """The map drawn with a perceptual colour map and a colour bar in m/s."""
    detail = await _find_map(view, sample_id, version)
    pictures: MapPictures = request.app.state.pictures
    return _png_response(await pictures.png(detail), version)


def _png_response(png: bytes, version: int | None) -> Response:
    # A named version never changes; "the newest" may.
    cache_control = "public, max-age=86400, immutable" if version is not None else "no-cache"
    return Response(png, media_type="image/png", headers={"Cache-Control": cache_control})


@router.get(
    "/maps/{sample_id}/compare.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "three panels side by side"},
        404: {"description": "no such map, or nothing to compare it with"},
    },
    tags=["maps"],
)
async def compare_png(
    request: Request,
    view: View,
    sample_id: SampleId,
    version: Version = None,
    against: Annotated[
        Literal["auto", "truth", "previous"],
        Query(
            description="truth (where the source knows it: the demo), the previous map "
            "stored, or auto: the truth if known, else the previous map"
        ),
    ] = "auto",
) -> Response:
    """The map beside a reference and their difference: the true map (in the demo, where
    the simulator knows it) or the map stored before it (in the field: what changed)."""
    detail = await _find_map(view, sample_id, version)
    reference, kind, key = None, against, ""
    if against in ("auto", "truth"):
        reference = await view.truth(sample_id)
        kind, key = "truth", "truth"
    if reference is None and against in ("auto", "previous"):
        before = [m for m in await view.list_maps(4, before=sample_id) if m.sample_id != sample_id]
        if before:
            previous = await view.get_map(before[0].sample_id)
            if previous is not None:
                reference = np.asarray(previous.velocity, dtype=np.float32)
                kind, key = "previous", f"{previous.sample_id}/v{previous.version}"
    if reference is None:
        why = {
            "truth": "its source knows no true map (only the demo's simulator does)",
            "previous": "no map was stored before it",
            "auto": "its source knows no true map and no map was stored before it",
        }
        raise HTTPException(404, f"nothing to compare {sample_id!r} with: {why[against]}")
    pictures: MapPictures = request.app.state.pictures
    return _png_response(await pictures.compare_png(detail, reference, kind, key), version)


@router.get(
    "/maps/{sample_id}",
    response_model=MapDetail,
    responses={**NPY_RESPONSE, **NOT_FOUND},
    tags=["maps"],
)
async def get_map(
    view: View, sample_id: SampleId, version: Version = None, format: MapFormat = "json"
) -> MapDetail | Response:
    """One sample's map: its newest version unless ``version`` is given."""
    detail = await _find_map(view, sample_id, version)
    return detail if format == "json" else _npy(detail)


def _npy(detail: MapDetail) -> Response:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(detail.velocity, dtype=np.float32), allow_pickle=False)
    name = f"{detail.sample_id}_v{detail.version}.npy"
    return Response(
        buffer.getvalue(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/maps", response_model=MapList, tags=["maps"])
async def list_maps(
    view: View,
    limit: Annotated[int, Query(ge=1, le=500, description="how many, newest first")] = 50,
    before: Annotated[
        str | None, Query(pattern=ID_REGEX, description="only maps stored before this sample")
    ] = None,
    format: Annotated[
        Literal["json"],
        Query(
            description="json only: the list carries no velocities; fetch a map's array "
            "from /api/maps/{sample_id}?format=npy"
        ),
    ] = "json",
) -> MapList:
    """Recent maps without their velocities, newest first."""
    return MapList(maps=[map_summary(m) for m in await view.list_maps(limit, before)])


@router.delete(
    "/maps/{sample_id}",
    response_model=MapDeleted,
    dependencies=[Depends(require_token)],
    responses={
        **AUTH_RESPONSES,
        404: {"description": "no map stored for this sample"},
        503: {"description": "the database refused the change"},
    },
    tags=["maps"],
)
async def delete_map(view: View, sample_id: SampleId) -> MapDeleted:
    """Delete every version of a sample's map (needs ``Authorization: Bearer <token>``)."""
    try:
        deleted = await view.delete_map(sample_id)
    except StoreUnavailable as exc:
        raise HTTPException(503, f"not deleted: {exc}") from None
    if deleted == 0:
        raise HTTPException(404, f"no map stored for sample {sample_id!r}")
    return MapDeleted(sample_id=sample_id, versions=deleted)


@router.get("/devices", response_model=DeviceList, tags=["devices"])
async def devices(view: View) -> DeviceList:
    """Every device: status, counters, arrival delays and the edge's own heartbeat."""
    return DeviceList(devices=view.devices())


@router.get("/health", response_model=Health, tags=["service"])
async def health(view: View) -> Health:
    """The service's own state: broker link, buffer depth, decode latency (503 with
    ``"status": "starting"`` until the model is loaded and profiled)."""
    return view.health()


# A plain def: FastAPI runs it in a worker thread, off the event loop.
@service_router.get("/metrics", response_class=Response, tags=["service"])
def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    registry = request.app.state.deployments.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


@service_router.get("/api/deployments", response_model=DeploymentList, tags=["deployments"])
async def deployments(request: Request) -> DeploymentList:
    """Every deployment served: its state, maps and devices in one line each (the
    monitor's picker). A centre serves one; ``epic api`` every one in its database."""
    served: Deployments = request.app.state.deployments
    return DeploymentList(deployments=await served.summaries())


@service_router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"},
    )


def _version() -> str:
    try:
        return metadata.version("epic-fwi")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.pictures.close()  # the render process goes with the API


def create_app(
    served: CentralView | Deployments,
    png_cache_size: int = 64,
    api_token: str | None = None,
    max_live_clients: int = 32,
) -> FastAPI:
    """The API and monitor for one running centre (its view) or for every deployment of a
    database (``epic api``); ``api_token`` enables deleting maps."""
    deployments = served if isinstance(served, Deployments) else OneDeployment(served)
    names = deployments.names()
    if isinstance(served, Deployments):
        about = "every deployment in its database (`/api/deployments` lists them)"
    else:
        about = f"deployment `{names[0]}`"
    app = FastAPI(
        title="EPIC central",
        version=_version(),
        description=(
            f"Serving {about}: velocity maps decoded from the edge devices' latents, device "
            "health, and a live feed. Each deployment's routes are under "
            "`/api/deployments/{deployment}/`; the `/api/...` routes that name none answer "
            "for the only one served. Read-only, but for deleting a sample's maps with the "
            "configured bearer token."
        ),
        docs_url=None,  # served from local files below, not a CDN
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.deployments = deployments
    app.state.api_token = api_token
    app.state.max_live_clients = max_live_clients
    app.state.live_clients = 0
    app.state.pictures = MapPictures(png_cache_size)
    app.include_router(router, prefix="/api", responses=NO_DEPLOYMENT)
    app.include_router(
        router,
        prefix="/api/deployments/{deployment}",
        dependencies=[Depends(_deployment_param)],
        responses=NO_DEPLOYMENT,
    )
    app.include_router(service_router)
    app.add_exception_handler(ServiceStarting, answer_starting)
    app.include_router(live_feed.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_offline_docs(app)
    return app
