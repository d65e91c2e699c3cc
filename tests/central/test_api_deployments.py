"""One HTTP process serving several deployments (``epic api``): each deployment's routes
under its name, the picker's list, the short routes refused with the names to use, and a
centre's own deployment under both paths."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from starlette.websockets import WebSocketDisconnect

from epic.central.api import create_app
from epic.central.deployments import Deployments, UnknownDeployment
from epic.central.schemas import DeploymentSummary
from epic.central.view import CentralView
from tests.central.fake_view import FakeView, make_device, make_map


class FakeDeployments(Deployments):
    def __init__(self, *views: FakeView) -> None:
        self.views = {v.deployment: v for v in views}
        self.metrics = CollectorRegistry()

    def names(self) -> list[str]:
        return sorted(self.views)

    def view(self, name: str) -> CentralView:
        if name not in self.views:
            raise UnknownDeployment(name, self.names())
        return self.views[name]

    async def summaries(self) -> list[DeploymentSummary]:
        return [
            DeploymentSummary(deployment=n, status="ok", maps_stored=len(v._maps))
            for n, v in sorted(self.views.items())
        ]


@pytest.fixture
def views() -> tuple[FakeView, FakeView]:
    north, south = FakeView(deployment="north"), FakeView(deployment="south")
    north.add_map(make_map("n.shot-1", seed=1))
    south.add_map(make_map("s.shot-1", seed=2))
    south.add_map(make_map("s.shot-2", seed=3))
    north.set_device(make_device("dev-0"))
    return north, south


@pytest.fixture
def client(views: tuple[FakeView, FakeView]) -> Iterator[TestClient]:
    with TestClient(create_app(FakeDeployments(*views))) as c:
        yield c


def test_each_deployment_has_its_own_routes(client: TestClient) -> None:
    listed = client.get("/api/deployments").json()["deployments"]
    assert [(d["deployment"], d["maps_stored"]) for d in listed] == [("north", 1), ("south", 2)]
    south = client.get("/api/deployments/south/maps").json()["maps"]
    assert [m["sample_id"] for m in south] == ["s.shot-2", "s.shot-1"]
    latest = client.get("/api/deployments/north/maps/latest").json()
    assert latest["sample_id"] == "n.shot-1"
    assert client.get("/api/deployments/north/maps/n.shot-1.png").status_code == 200
    assert client.get("/api/deployments/south/maps/n.shot-1").status_code == 404
    assert [d["id"] for d in client.get("/api/deployments/north/devices").json()["devices"]] == [
        "dev-0"
    ]


def test_unknown_deployments_and_short_routes_say_what_there_is(client: TestClient) -> None:
    response = client.get("/api/deployments/east/maps")
    assert response.status_code == 404
    assert response.json()["detail"] == "no deployment 'east' here (known: north, south)"
    response = client.get("/api/maps/latest")  # which one? several are served
    assert response.status_code == 409
    assert "2 deployments (north, south)" in response.json()["detail"]
    assert client.get("/api/deployments/no%20such/maps").status_code == 422


def test_live_feed_per_deployment(client: TestClient, views: tuple[FakeView, FakeView]) -> None:
    south = views[1]
    with client.websocket_connect("/ws/deployments/south/live") as ws:
        first = ws.receive_json()
        assert (first["type"], first["map"]["sample_id"]) == ("map", "s.shot-2")
        south.add_map(make_map("s.shot-3", seed=4))
        assert ws.receive_json()["map"]["sample_id"] == "s.shot-3"
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws/deployments/east/live") as ws,
    ):
        ws.receive_json()
    assert refused.value.code == 1008


def test_a_centre_serves_its_deployment_under_both_paths() -> None:
    view = FakeView(deployment="north")
    view.add_map(make_map("n.shot-1", seed=1))
    with TestClient(create_app(view)) as client:
        short = client.get("/api/maps/latest").json()
        named = client.get("/api/deployments/north/maps/latest").json()
        assert short == named
        listed = client.get("/api/deployments").json()["deployments"]
        assert [(d["deployment"], d["maps_stored"]) for d in listed] == [("north", 1)]
        assert client.get("/api/deployments/south/health").status_code == 404
