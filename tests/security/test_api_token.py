"""The one state-changing endpoint, ``DELETE /api/maps/{sample_id}``, against a running
centre: it needs the configured bearer token (401 without it or with another), is disabled
(403) when no token is configured, and a browser on another origin cannot even ask (no CORS)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from epic.central.api import create_app
from epic.central.service import CentralService
from epic.central.settings import CentralSettings
from tests.central.fake_view import FakeView, make_map
from tests.central.service.conftest import Feed, publish
from tests.support.brokers import BrokerProcess

TOKEN = "Vq3u7rJk-2mXc9LpT0sYw4HzNb6Ae1Df"


@pytest.mark.slow
def test_deleting_a_samples_maps_needs_the_configured_token(
    embedded_broker: BrokerProcess, bundle: Path, feed: Feed, settings_for: Callable
) -> None:
    async def main() -> None:
        settings = settings_for(bundle, embedded_broker.url, api_token=TOKEN, deadline_ms=800)
        async with CentralService(settings) as svc:
            await svc.wait_connected()
            await publish(
                embedded_broker.url, [feed.message(k, d) for k in (0, 1) for d in feed.devices]
            )
            async with asyncio.timeout(20):
                while svc.store.count < 2:
                    await asyncio.sleep(0.05)
            target = f"/api/maps/{feed.sample_id(0)}"
            async with httpx.AsyncClient(base_url=svc.http.url, timeout=10) as http:
                for headers in (
                    {},
                    {"Authorization": f"Bearer {TOKEN[:-1]}x"},
                    {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": "Bearer"},
                ):
                    refused = await http.delete(target, headers=headers)
                    assert refused.status_code == 401, headers
                    assert refused.headers["www-authenticate"] == "Bearer"
                assert (await http.get(target)).status_code == 200  # nothing happened
                # A browser elsewhere: its preflight gets no permission to send a DELETE.
                preflight = await http.options(
                    target,
                    headers={
                        "Origin": "http://elsewhere.example",
                        "Access-Control-Request-Method": "DELETE",
                        "Access-Control-Request-Headers": "authorization",
                    },
                )
                assert "access-control-allow-origin" not in preflight.headers
                auth = {"Authorization": f"Bearer {TOKEN}"}
                done = await http.delete(target, headers=auth)
                assert done.json() == {"sample_id": feed.sample_id(0), "versions": 1}
                assert (await http.get(target)).status_code == 404
                assert (await http.delete(target, headers=auth)).status_code == 404
                assert (await http.get(f"/api/maps/{feed.sample_id(1)}")).status_code == 200
                health = (await http.get("/api/health")).json()
            assert health["maps_stored"] == 1 and svc.store.count == 1

    asyncio.run(main())


def test_without_a_configured_token_deleting_is_disabled() -> None:
    from fastapi.testclient import TestClient

    view = FakeView()
    view.add_map(make_map("line1.shot-001"))
    with TestClient(create_app(view)) as client:  # no api_token
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            response = client.delete("/api/maps/line1.shot-001", headers=headers)
            assert response.status_code == 403 and "disabled" in response.json()["detail"]
        assert client.get("/api/maps/line1.shot-001").status_code == 200


def test_the_token_comes_from_the_environment_and_weak_ones_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EPIC_CENTRAL_API_TOKEN", TOKEN)
    settings = CentralSettings(bundle=tmp_path)
    assert settings.api_token is not None and settings.api_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)  # a secret, never printed
    for weak in ("short", "changeme" * 2, " " + TOKEN, "a" * 40):
        with pytest.raises(ValidationError, match="API token"):
            CentralSettings(bundle=tmp_path, api_token=weak)
    monkeypatch.delenv("EPIC_CENTRAL_API_TOKEN")
    result = subprocess.run(
        [sys.executable, "-m", "epic", "central", "--bundle", str(tmp_path), "--api-token", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("epic: error: ") and "the API token must be at least 16" in lines[0]
