#!/usr/bin/env python3
"""Make docs/dashboard.png, the README's picture of the dashboard.

    .venv/bin/python scripts/dashboard_screenshot.py [--out docs/dashboard.png]

Starts `livepeer-emulator serve --clock manual` on a free loopback port with a temporary
data dir, uploads fixtures/sample.mp4 under a few names (some left processing, one
failed), registers a webhook, then opens the dashboard in Debian's `chromium` (through
Playwright, as the browser tests do) with one asset's detail open, and saves the
screenshot. Re-run it when the page changes, and commit the PNG.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import ServerProcess  # noqa: E402

KEY = "dashboard-demo"
BROKEN = {"fail_at_progress": 0.4, "error": "Failed to transcode video: invalid codec"}
SCENARIO = {
    "name": "demo",
    "timeline": {"queue": "0s", "processing": "20s"},
    "faults": [{"match": {"asset_name": "broken-*"}, "processing": BROKEN}],
}


def upload(server: ServerProcess, name: str) -> str:
    status, created = server.request("POST", "/api/asset/request-upload", {"name": name}, KEY)
    assert status == 200, created
    data = (ROOT / "fixtures" / "sample.mp4").read_bytes()
    urllib.request.urlopen(urllib.request.Request(created["url"], data=data, method="PUT"))
    return str(created["asset"]["id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(Path(scratch) / "data", "--clock", "manual").start()
        try:
            status, body = server.request("PUT", "/_emulator/scenario", SCENARIO, KEY)
            assert status == 200, body
            hook = {"name": "my app", "url": "http://127.0.0.1:9/webhooks", "events": []}
            server.request("POST", "/api/webhook", hook, KEY)
            upload(server, "intro.mp4")
            upload(server, "product-demo.mp4")
            server.advance(30, KEY)
            upload(server, "broken-upload.mp4")
            upload(server, "holiday.mp4")
            server.advance(9, KEY)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                page = browser.new_page(viewport={"width": 1200, "height": 1100})
                page.goto(server.root + "/")
                page.get_by_role("button", name="product-demo.mp4").click()
                page.get_by_role("img", name="Thumbnail at").first.wait_for(timeout=10_000)
                page.wait_for_timeout(1500)  # one more poll: every table filled
                page.evaluate("window.scrollTo(0, 0)")
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=False)
                browser.close()
        finally:
            server.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
