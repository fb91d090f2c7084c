"""The dashboard's first paint with 1,000 assets in the tenant (issue 17: <= 300 ms).

    .venv/bin/python bench/dashboard_first_paint.py [--assets 1000] [--rounds 5]

Starts `serve --clock manual` (temporary data dir), makes N assets with request-upload
(no media: they stay `waiting`, which costs the list nothing less), then loads `/` in
Debian's `chromium` (Playwright) and prints, per round, the browser's first contentful
paint and the time until the asset table shows its first page, both from navigation
start, and their medians. Exits 1 when the median of the latter passes 300 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import ServerProcess  # noqa: E402

KEY = "bench-dashboard"
TARGET_MS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(Path(scratch) / "data", "--clock", "manual").start()
        try:
            for n in range(args.assets):
                status, body = server.request(
                    "POST", "/api/asset/request-upload", {"name": f"asset-{n:04}.mp4"}, KEY
                )
                assert status == 200, body
            paints: list[float] = []
            tables: list[float] = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                for round_ in range(args.rounds):
                    page = browser.new_context().new_page()
                    page.goto(server.root + "/")
                    page.get_by_role("button", name=f"asset-{args.assets - 1:04}.mp4").wait_for()
                    table = page.evaluate(
                        "performance.getEntriesByName('assets-shown')[0].startTime"
                    )
                    paint = page.evaluate(
                        "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
                    )
                    paints.append(paint)
                    tables.append(table)
                    print(f"round {round_ + 1}: first paint {paint:.0f} ms, table {table:.0f} ms")
                    page.context.close()
                browser.close()
        finally:
            server.stop()
    table_median = statistics.median(tables)
    print(
        f"median of {args.rounds} with {args.assets} assets: first paint "
        f"{statistics.median(paints):.0f} ms, asset table {table_median:.0f} ms "
        f"(target {TARGET_MS:.0f} ms)"
    )
    sys.exit(0 if table_median <= TARGET_MS else 1)


if __name__ == "__main__":
    main()
