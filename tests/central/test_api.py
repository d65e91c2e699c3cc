"""The REST routes, metrics, page files and the live WebSocket, over an in-memory view."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from epic.central.api import create_app
from tests.central.fake_view import DEVICE_IDS, FakeView, make_device, make_map

T0 = 1_700_000_000_000_000_000


@pytest.fixture
def view() -> FakeView:
    return FakeView(queue_size=8)


@pytest.fixture
def client(view: FakeView) -> Iterator[TestClient]:
    with TestClient(create_app(view)) as c:
        yield c


@pytest.fixture
def stocked(view: FakeView) -> FakeView:
    """Three maps (one refined to v2, one partial) and five devices."""
    view.add_map(make_map("line1.shot-001", decoded_ns=T0, seed=1))
    view.add_map(make_map("line1.shot-002", decoded_ns=T0 + 10**9, missing=["dev-3"], seed=2))
    view.add_map(make_map("line1.shot-002", version=2, decoded_ns=T0 + 2 * 10**9, seed=3))
    view.add_map(make_map("line1.shot-003", decoded_ns=T0 + 3 * 10**9, ssim=0.91, seed=4))
    for device_id in DEVICE_IDS:
        view.set_device(make_device(device_id))
    return view


def test_latest_is_404_with_a_reason_before_any_map(client: TestClient) -> None:
    response = client.get("/api/maps/latest")
    assert response.status_code == 404
    assert response.json()["detail"] == "no map decoded yet"


def test_latest_map_has_the_contract_fields(client: TestClient, stocked: FakeView) -> None:
    body = client.get("/api/maps/latest").json()
    assert body["sample_id"] == "line1.shot-003"
    assert body["ssim"] == pytest.approx(0.91)
    velocity = np.array(body["velocity"])
    assert velocity.shape == (70, 70)
    assert 1500 <= velocity.min() <= velocity.max() <= 4500
    for key in ("devices_used", "devices_missing", "partial", "version", "model_hash"):
        assert key in body
    assert set(body["timings"]) >= {
        "acquired_ns",
        "first_arrival_ns",
        "decode_start_ns",
        "decode_end_ns",
    }


def test_get_map_newest_version_unless_asked(client: TestClient, stocked: FakeView) -> None:
    newest = client.get("/api/maps/line1.shot-002").json()
    assert (newest["version"], newest["partial"]) == (2, False)
    first = client.get("/api/maps/line1.shot-002", params={"version": 1}).json()
    assert (first["version"], first["partial"], first["devices_missing"]) == (1, True, ["dev-3"])


def test_unknown_sample_and_version_are_404(client: TestClient, stocked: FakeView) -> None:
    response = client.get("/api/maps/no-such-sample")
    assert response.status_code == 404
    assert "no-such-sample" in response.json()["detail"]
    response = client.get("/api/maps/line1.shot-002", params={"version": 7})
    assert response.status_code == 404
    assert "newest is 2" in response.json()["detail"]
    assert client.get("/api/maps/no-such-sample.png").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/api/maps/bad%20id",
        "/api/maps/" + "x" * 65,
        "/api/maps/bad$id.png",
        "/api/maps/ok?version=0",
        "/api/maps/ok?format=xml",
    ],
)
def test_bad_ids_and_parameters_are_422_with_a_reason(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail and detail[0]["msg"]


def test_npy_round_trips_the_float32_map(client: TestClient, stocked: FakeView) -> None:
    response = client.get("/api/maps/line1.shot-001", params={"format": "npy"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert "line1.shot-001_v1.npy" in response.headers["content-disposition"]
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert array.dtype == np.float32 and array.shape == (70, 70)
    expected = np.array(client.get("/api/maps/line1.shot-001").json()["velocity"], np.float32)
    np.testing.assert_array_equal(array, expected)


def test_latest_npy_is_the_newest_map(client: TestClient, stocked: FakeView) -> None:
    response = client.get("/api/maps/latest", params={"format": "npy"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert "line1.shot-003_v1.npy" in response.headers["content-disposition"]
    array = np.load(io.BytesIO(response.content), allow_pickle=False)
    expected = np.array(client.get("/api/maps/latest").json()["velocity"], np.float32)
    np.testing.assert_array_equal(array, expected)


@pytest.mark.parametrize(
    ("path", "fmt", "choices"),
    [
        ("/api/maps/latest", "xyz", "'json' or 'npy'"),
        ("/api/maps/line1.shot-001", "xyz", "'json' or 'npy'"),
        ("/api/maps", "npy", "'json'"),
        ("/api/maps", "xyz", "'json'"),
        ("/api/maps/line1.shot-001.png", "npy", "'png'"),
    ],
)
def test_every_map_endpoint_refuses_a_format_it_cannot_give(
    client: TestClient, stocked: FakeView, path: str, fmt: str, choices: str
) -> None:
    response = client.get(path, params={"format": fmt})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == ["query", "format"] and choices in error["msg"]


@pytest.mark.parametrize(
    ("path", "fmt", "media"),
    [
        ("/api/maps/latest", "json", "application/json"),
        ("/api/maps", "json", "application/json"),
        ("/api/maps/line1.shot-001.png", "png", "image/png"),
    ],
)
def test_the_format_each_endpoint_gives_can_be_named(
    client: TestClient, stocked: FakeView, path: str, fmt: str, media: str
) -> None:
    response = client.get(path, params={"format": fmt})
    assert response.status_code == 200 and response.headers["content-type"] == media


def test_png_of_an_id_with_dots_is_a_real_picture(client: TestClient, stocked: FakeView) -> None:
    response = client.get("/api/maps/line1.shot-002.png", params={"version": 1})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert "immutable" in response.headers["cache-control"]
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(response.content))
    assert 400 <= image.width <= 1200 and 300 <= image.height <= 1000
    # Not a blank canvas: the map and the colour bar bring many colours.
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50
    newest = client.get("/api/maps/line1.shot-002.png")
    assert newest.headers["cache-control"] == "no-cache"
    assert newest.content != response.content  # v2 is another picture


def test_png_is_rendered_once_per_version(client: TestClient, stocked: FakeView) -> None:
    pictures = client.app.state.pictures
    first = client.get("/api/maps/line1.shot-003.png").content
    second = client.get("/api/maps/line1.shot-003.png", params={"version": 1}).content
    assert first == second
    assert pictures.renders == 1 and len(pictures.cache) == 1


def test_list_is_newest_first_without_velocities(client: TestClient, stocked: FakeView) -> None:
    maps = client.get("/api/maps").json()["maps"]
    assert [(m["sample_id"], m["version"]) for m in maps] == [
        ("line1.shot-003", 1),
        ("line1.shot-002", 2),
        ("line1.shot-002", 1),
        ("line1.shot-001", 1),
    ]
    assert all("velocity" not in m for m in maps)
    limited = client.get("/api/maps", params={"limit": 2}).json()["maps"]
    assert len(limited) == 2
    older = client.get("/api/maps", params={"before": "line1.shot-003"}).json()["maps"]
    assert older[0]["sample_id"] == "line1.shot-002"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"before": "no/slash"}])
def test_list_rejects_bad_parameters(client: TestClient, params: dict) -> None:
    response = client.get("/api/maps", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] in params


def test_devices_and_health(client: TestClient, stocked: FakeView) -> None:
    devices = client.get("/api/devices").json()["devices"]
    assert [d["id"] for d in devices] == DEVICE_IDS
    assert devices[0]["rejected"] == {"bad_crc": 2, "stale_model": 1}
    assert devices[0]["heartbeat"]["encode_ms_p95"] == pytest.approx(11.9)
    health = client.get("/api/health").json()
    assert health["broker_connected"] is True and health["maps_stored"] == 4


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert 'epic_latents_rejected_total{reason="bad_crc"} 2.0' in response.text
    assert "epic_decode_seconds_bucket" in response.text


def test_page_static_files_and_openapi(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'id="latest-map"' in page.text and 'id="device-table"' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "/ws/deployments/" in script.text
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/static/nothing.js").status_code == 404
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "EPIC central"
    for path in ("/api/maps/latest", "/api/maps/{sample_id}.png"):
        assert set(schema["paths"][path]) == {"get"}
    # Deleting needs the bearer token (tests/security/test_api_token.py).
    assert set(schema["paths"]["/api/maps/{sample_id}"]) == {"get", "delete"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()  # the field is offline
    js = docs.text.split('<script src="')[1].split('"')[0]
    assert js.startswith("/docs-assets/") and client.get(js).status_code == 200


def test_the_api_is_read_only(client: TestClient, stocked: FakeView) -> None:
    assert client.post("/api/maps/line1.shot-001").status_code == 405
    # The one change the API offers is disabled without a configured token.
    assert client.delete("/api/maps/line1.shot-001").status_code == 403
    assert client.put("/api/devices").status_code == 405
    # No CORS: a foreign origin gets no permission header.
    response = client.get("/api/devices", headers={"Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in response.headers


def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def test_live_sends_a_snapshot_then_events(client: TestClient, stocked: FakeView) -> None:
    with client.websocket_connect("/ws/live") as ws:
        first = ws.receive_json()
        assert first["type"] == "map" and first["map"]["sample_id"] == "line1.shot-003"
        assert "velocity" not in first["map"]
        snapshot = [ws.receive_json() for _ in DEVICE_IDS]
        assert [e["device"]["id"] for e in snapshot] == DEVICE_IDS
        stocked.add_map(make_map("line1.shot-004", missing=["dev-1"]))
        event = ws.receive_json()
        assert event["type"] == "map"
        assert event["map"]["sample_id"] == "line1.shot-004"
        assert event["map"]["devices_missing"] == ["dev-1"]
        stocked.set_device(make_device("dev-1", online=False))
        event = ws.receive_json()
        assert event == {
            "type": "device",
            "device": make_device("dev-1", online=False).model_dump(mode="json")
            | {"last_seen_ns": event["device"]["last_seen_ns"]},
        }
    # Leaving the block closes the client: the server ends its subscription.
    _wait_for(lambda: stocked.subscriber_count == 0)


def test_live_with_nothing_yet_still_serves_events(client: TestClient, view: FakeView) -> None:
    with client.websocket_connect("/ws/live") as ws:
        _wait_for(lambda: view.subscriber_count == 1)
        view.set_device(make_device("dev-0"))
        assert ws.receive_json()["device"]["id"] == "dev-0"


def test_a_client_that_falls_behind_is_closed_1013(client: TestClient, stocked: FakeView) -> None:
    with client.websocket_connect("/ws/live") as ws:
        for _ in range(1 + len(DEVICE_IDS)):
            ws.receive_json()
        burst = [{"type": "tick", "n": n} for n in range(stocked.queue_size * 3)]
        stocked.publish(*burst)
        with pytest.raises(WebSocketDisconnect) as closed:
            for _ in burst:
                ws.receive_json()
        assert closed.value.code == 1013
        assert "fell behind" in closed.value.reason
    _wait_for(lambda: stocked.subscriber_count == 0)


def test_a_cross_origin_page_cannot_open_the_feed(client: TestClient, view: FakeView) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws/live", headers={"origin": "http://evil.example"}),
    ):
        pass
    assert refused.value.code == 1008
    assert view.subscriber_count == 0
    # The page's own origin is fine.
    with client.websocket_connect("/ws/live", headers={"origin": "http://testserver"}):
        _wait_for(lambda: view.subscriber_count == 1)


def test_compare_against_the_truth_or_the_previous_map(
    client: TestClient, stocked: FakeView
) -> None:
    # No truth here (a field source): the map stored before it, the other sample.
    field = client.get("/api/maps/line1.shot-003/compare.png")
    assert field.status_code == 200 and field.headers["content-type"] == "image/png"
    assert field.content.startswith(b"\x89PNG")
    # The oldest map has nothing before it, and no truth: a 404 that says so.
    r = client.get("/api/maps/line1.shot-001/compare.png")
    assert r.status_code == 404
    assert "no true map and no map was stored before it" in r.json()["detail"]
    r = client.get("/api/maps/line1.shot-003/compare.png", params={"against": "truth"})
    assert r.status_code == 404 and "only the demo's simulator" in r.json()["detail"]
    # Where the source knows the truth (the demo), auto takes it: another picture.
    stocked.truths["line1.shot-003"] = np.full((70, 70), 3000.0, np.float32)
    truth = client.get("/api/maps/line1.shot-003/compare.png", params={"version": 1})
    assert truth.status_code == 200 and truth.content != field.content
    assert "immutable" in truth.headers["cache-control"]
    previous = client.get("/api/maps/line1.shot-003/compare.png?against=previous")
    assert previous.status_code == 200 and previous.content == field.content
    assert client.get("/api/maps/line1.shot-003/compare.png?against=x").status_code == 422
    assert client.get("/api/maps/nope/compare.png").status_code == 404
