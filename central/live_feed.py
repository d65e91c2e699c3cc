"""The live feed, ``/ws/deployments/{deployment}/live`` (or ``/ws/live`` for the only
deployment served): a snapshot (the latest map, every device), then a JSON event
per map and device change, for as long as the client reads. At most ``max_live_clients``
(the app's state) at once; more are accepted and closed 1013 so that they read why. Only
same-origin browsers are let in (CORS does not cover WebSockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from epic.central.deployments import Deployments, UnknownDeployment
from epic.central.schemas import DeviceEvent, MapEvent, map_summary
from epic.central.view import CentralView, ServiceStarting

__all__ = ["router"]

# A client whose socket takes longer than this to accept one event is not reading: drop it.
WS_SEND_TIMEOUT_S = 10.0
WS_CLOSE_TIMEOUT_S = 2.0
# Why a client was dropped -> (close code, reason). 1013: try again later. The view ends a
# feed for a client that fell behind, and for every client when the centre stops.
DROP_CLOSE = {
    "behind": (1013, "feed ended: client fell behind, or the centre is stopping; reconnect"),
    "stalled": (1008, "not reading the live feed; dropped"),
    "starting": (1013, "the centre is starting; reconnect in a few seconds"),
}
FULL_CLOSE = (1013, "too many live clients; try again later")
router = APIRouter()


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
async def live(websocket: WebSocket) -> None:
    """The only deployment's feed."""
    await _accept(websocket, None)


@router.websocket("/ws/deployments/{deployment}/live")
async def deployment_live(websocket: WebSocket, deployment: str) -> None:
    """A snapshot (latest map, every device), then a JSON event per map and device change."""
    await _accept(websocket, deployment)


async def _accept(websocket: WebSocket, deployment: str | None) -> None:
    if not _same_origin(websocket):
        await websocket.close(code=1008, reason="cross-origin WebSocket refused")
        return
    state = websocket.app.state
    deployments: Deployments = state.deployments
    try:
        view = deployments.default() if deployment is None else deployments.view(deployment)
    except UnknownDeployment as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])  # a close reason: 123 bytes
        return
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
                await websocket.send_text(MapEvent(map=map_summary(latest)).model_dump_json())
            for device in view.devices():
                await websocket.send_text(DeviceEvent(device=device).model_dump_json())
            reason = await _serve_feed(websocket, events)
    except (WebSocketDisconnect, WebSocketDisconnected):
        return
    except ServiceStarting:
        reason = "starting"
    if reason is not None:
        code, text = DROP_CLOSE[reason]
        try:
            async with asyncio.timeout(WS_CLOSE_TIMEOUT_S):
                await websocket.close(code=code, reason=text)
        except (TimeoutError, WebSocketDisconnect, WebSocketDisconnected):
            pass  # it was going anyway
