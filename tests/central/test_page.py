"""The live monitor in a real browser (Debian's chromium driven by Playwright) against the app
served by a real uvicorn on a free port, with maps and device changes pushed during the test."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from epic.central.api import create_app
from tests.central.fake_view import DEVICE_IDS, FakeView, layered_velocity, make_device, make_map

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "runs" / "screenshots"
WAIT_MS = 10_000


def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before uvicorn starts: no race for the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start in 10 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (the system-deps step installs it)")
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def view() -> FakeView:
    """Five devices and eight minutes of maps, one of them partial."""
    view = FakeView()
    now = time.time_ns()
    for i in range(12):
        view.add_map(
            make_map(
                f"line7.shot-{i:03d}",
                decoded_ns=now - (12 - i) * 40 * 10**9,
                end_to_end_ms=150.0 + 30 * (i % 4) + (400.0 if i == 6 else 0.0),
                missing=["dev-2"] if i == 6 else (),
                seed=i,
            )
        )
    for device_id in DEVICE_IDS:
        view.set_device(make_device(device_id))
    return view


@pytest.fixture
def base_url(view: FakeView) -> Iterator[str]:
    yield from serve(create_app(view))


def _save(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / name)
    return shot


def _map_loaded(page) -> None:
    page.wait_for_function(
        "() => { const i = document.querySelector('#latest-map');"
        " return i && !i.hidden && i.complete && i.naturalWidth > 0 }",
        timeout=WAIT_MS,
    )


def test_monitor_shows_the_map_and_live_device_changes(
    browser, base_url: str, view: FakeView, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
    page.goto(base_url + "/")

    expect(page.locator("#conn-state")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(page.locator("#sample-id")).to_have_text("line7.shot-011", timeout=WAIT_MS)
    _map_loaded(page)
    # No truth in the field: the comparison is with the map before, and what changed.
    compare = page.locator("#compare-map")
    expect(page.locator("#compare-figure")).to_be_visible()
    expect(compare).to_have_attribute("data-against", "previous")
    expect(compare).to_have_attribute(
        "src",
        "/api/deployments/test-dep/maps/line7.shot-011/compare.png?version=1&against=previous",
    )
    expect(page.locator("#compare-caption")).to_contain_text("what changed")
    # The oldest map has nothing before it: no comparison (and no request that must fail).
    page.locator('#recent-maps li[data-sample="line7.shot-000"]').click()
    expect(page.locator("#sample-id")).to_have_text("line7.shot-000")
    expect(page.locator("#compare-figure")).to_be_hidden()
    page.locator("#follow-live").click()
    expect(page.locator("#compare-figure")).to_be_visible()
    rows = page.locator("#device-table tbody tr")
    expect(rows).to_have_count(5, timeout=WAIT_MS)
    expect(page.locator("#device-table tbody tr.bad")).to_have_count(0)
    expect(page.locator("#recent-maps li")).to_have_count(12)
    # The chart's time axis fits the data (its maps span 7.5 minutes), not always 10.
    expect(page.locator("#latency-stats")).to_contain_text("12 maps in 8 min")

    # A new, partial map arrives over the WebSocket and replaces the picture.
    view.add_map(make_map("line7.shot-012", missing=["dev-3"], end_to_end_ms=420.0, seed=12))
    expect(page.locator("#sample-id")).to_have_text("line7.shot-012", timeout=WAIT_MS)
    expect(page.locator("#latest-map")).to_have_attribute(
        "src", "/api/deployments/test-dep/maps/line7.shot-012.png?version=1"
    )
    _map_loaded(page)
    expect(page.locator("#map-partial")).to_have_text("PARTIAL")
    expect(page.locator("#devices-missing")).to_have_text("dev-3")
    expect(page.locator("#map-age")).to_have_text(re.compile(r"^\d+ s ago$"), timeout=WAIT_MS)

    # A device goes offline: its row turns red.
    view.set_device(make_device("dev-3", online=False))
    offline = page.locator('#device-table tbody tr[data-device="dev-3"]')
    expect(offline).to_have_class("bad", timeout=WAIT_MS)
    expect(offline).to_have_attribute("data-state", "offline")
    expect(offline.locator("td").nth(1)).to_contain_text("not waited for")
    red = offline.locator("td").nth(1).evaluate("td => getComputedStyle(td).backgroundColor")
    r, g, b = (int(c) for c in red[red.index("(") + 1 : red.index(")")].split(",")[:3])
    assert r > 200 and g < 230 and b < 230 and r - g > 30, red
    expect(page.locator('#device-table tbody tr[data-device="dev-0"]')).not_to_have_class("bad")

    # Clicking an older map shows it until "back to live".
    page.locator('#recent-maps li[data-sample="line7.shot-006"]').click()
    expect(page.locator("#sample-id")).to_have_text("line7.shot-006")
    expect(page.locator("#follow-live")).to_be_visible()
    _map_loaded(page)
    page.locator("#follow-live").click()
    expect(page.locator("#sample-id")).to_have_text("line7.shot-012")

    # The caption and the picture change together: when the caption names a new sample,
    # the picture shown is already that sample's, loaded.
    page.evaluate(
        """() => { window.seen = new Promise(resolve => {
             const el = document.querySelector('#sample-id');
             const watch = new MutationObserver(() => {
               if (el.textContent !== 'line7.shot-013') return;
               const img = document.querySelector('#latest-map');
               const cmp = document.querySelector('#compare-map');
               watch.disconnect();
               const loaded = img.complete && img.naturalWidth > 0;
               resolve({src: img.getAttribute('src'), loaded, cmp: cmp.getAttribute('src'),
                        cmpLoaded: cmp.complete && cmp.naturalWidth > 0});
             });
             watch.observe(el, {childList: true, characterData: true, subtree: true});
           }); }"""
    )
    # This one's source knows the truth (as the demo's does): truth, map and difference.
    view.truths["line7.shot-013"] = layered_velocity(14)
    view.add_map(make_map("line7.shot-013", end_to_end_ms=200.0, ssim=0.8, seed=13))
    seen = page.evaluate("() => window.seen")
    assert seen == {
        "src": "/api/deployments/test-dep/maps/line7.shot-013.png?version=1",
        "loaded": True,
        "cmp": "/api/deployments/test-dep/maps/line7.shot-013/compare.png?version=1&against=truth",
        "cmpLoaded": True,
    }
    expect(page.locator("#compare-caption")).to_contain_text("the true map")

    shot = _save(page, tmp_path, "monitor.png")
    assert shot.stat().st_size > 20_000
    assert problems == []


def test_monitor_reconnects_after_being_dropped(
    browser, base_url: str, view: FakeView, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 768, "height": 1024})  # a tablet, upright
    page.goto(base_url + "/")
    conn = page.locator("#conn-state")
    expect(conn).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    _map_loaded(page)

    view.drop_subscribers()
    expect(conn).not_to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect(conn).to_contain_text("fell behind", timeout=WAIT_MS)
    expect(conn).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    view.add_map(make_map("line7.shot-099", seed=99))
    expect(page.locator("#sample-id")).to_have_text("line7.shot-099", timeout=WAIT_MS)
    _map_loaded(page)
    _save(page, tmp_path, "monitor-tablet.png")
