"""/docs in a real browser (Debian's chromium driven by Playwright), with every request that
leaves the centre refused, as on a field laptop without internet: Swagger UI must render the
OpenAPI schema FastAPI writes (3.1) and list the endpoints. A status-code test cannot see
the "Unable to render this definition" that Swagger UI 4 showed instead."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from epic.central.api import create_app
from tests.central.fake_view import FakeView
from tests.central.test_page import CHROMIUM, CHROMIUM_ARGS, serve

pytestmark = pytest.mark.slow

WAIT_MS = 15_000
DEPLOYMENT_ENDPOINTS = [
    ("get", "/maps/latest"),
    ("get", "/maps/{sample_id}"),
    ("delete", "/maps/{sample_id}"),
    ("get", "/maps/{sample_id}.png"),
    ("get", "/maps/{sample_id}/compare.png"),
    ("get", "/maps"),
    ("get", "/devices"),
    ("get", "/health"),
]
# Each deployment's routes under its name, and again for the only one served.
ENDPOINTS = [
    *(
        (method, prefix + path)
        for prefix in ("/api", "/api/deployments/{deployment}")
        for method, path in DEPLOYMENT_ENDPOINTS
    ),
    ("get", "/api/deployments"),
    ("get", "/metrics"),
]


@pytest.fixture
def base_url() -> Iterator[str]:
    yield from serve(create_app(FakeView()))


def test_docs_render_every_endpoint_offline(base_url: str, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (the system-deps step installs it)")
    outside: list[str] = []
    problems: list[str] = []

    def only_the_centre(route, request) -> None:
        if request.url.startswith(base_url + "/"):
            route.continue_()
        else:  # the field has no internet: a page that needs it fails here
            outside.append(request.url)
            route.abort("internetdisconnected")

    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 1600})
            page.route("**/*", only_the_centre)
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.goto(base_url + "/docs")
            # Either the operations or Swagger UI's own error box ("Unable to render ...").
            page.wait_for_selector(".opblock, .errors-wrapper", timeout=WAIT_MS)
            listed = page.eval_on_selector_all(
                ".opblock",
                "blocks => blocks.map(b => [b.querySelector('.opblock-summary-method')"
                ".textContent.trim().toLowerCase(), b.querySelector('.opblock-summary-path')"
                ".getAttribute('data-path')])",
            )
            text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
        finally:
            chromium.close()

    assert "Unable to render" not in text, text[:500]
    assert "EPIC central" in text
    assert sorted(map(tuple, listed)) == sorted(ENDPOINTS)
    assert outside == [], f"/docs reached outside the centre: {outside}"
    assert problems == []
