"""Screenshot a running monitor page, as the README's docs/monitor.png was made.

    epic demo --duration 60 &
    python scripts/monitor-screenshot.py http://127.0.0.1:8000/ docs/monitor.png --wait 30

Opens the page in Debian's Chromium (Playwright, as the page tests do), waits until it is
live and the map and its comparison have loaded, then ``--wait`` seconds more for the
charts to fill, and saves a full-page screenshot.
"""

from __future__ import annotations

import argparse
import time

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--wait", type=float, default=20.0, help="seconds after the first map")
    ap.add_argument("--width", type=int, default=1366)
    args = ap.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        deadline = time.monotonic() + 60
        while True:  # the demo's centre may still be starting
            try:
                page.goto(args.url)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        expect(page.locator("#conn-state")).to_have_attribute("data-state", "live", timeout=60_000)
        expect(page.locator("#compare-figure")).to_be_visible(timeout=60_000)
        time.sleep(args.wait)
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
