"""The server's CPU with 5 dashboards polling it (issue 17: live updates <= 5% CPU).

    .venv/bin/python bench/dashboard_live_cpu.py [--assets 200] [--pages 5] [--seconds 10]

Starts `serve` (real clock, temporary data dir), makes N assets with request-upload (no
media: they stay `waiting`), then reads the server process's CPU time (utime + stime from
/proc/<pid>/stat) over `--seconds` idle, and again over `--seconds` with `--pages` pages
of `/` open in Debian's `chromium` (Playwright, as tests/test_browser.py launches it),
each on the assets tab with the only tenant selected, so each polls every second. Prints
both as a share of one core, and the polls the pages made, and exits 1 when the pages'
share passes 5%.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.serving import ServerProcess  # noqa: E402

KEY = "bench-dashboard-cpu"
TARGET_PERCENT = 5.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields after its closing ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def share(pid: int, seconds: float) -> float:
    """Percent of one core the process used over the next `seconds`."""
    cpu0, wall0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        server = ServerProcess(Path(scratch) / "data").start()
        assert server.proc is not None
        pid = server.proc.pid
        try:
            for n in range(args.assets):
                status, body = server.request(
                    "POST", "/api/asset/request-upload", {"name": f"asset-{n:04}.mp4"}, KEY
                )
                assert status == 200, body
            time.sleep(1)  # let the creations' own work settle before the baseline
            idle = share(pid, args.seconds)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium)
                pages = []
                for _ in range(args.pages):
                    page = browser.new_context().new_page()
                    page.goto(server.root + "/")
                    # The only tenant is chosen on load; its newest asset shows.
                    page.get_by_role("button", name=f"asset-{args.assets - 1:04}.mp4").wait_for()
                    assert page.evaluate("document.hidden") is False  # it polls only if shown
                    pages.append(page)
                ticks0 = sum(int(p.evaluate("state.ticks")) for p in pages)
                live = share(pid, args.seconds)
                polls = sum(int(p.evaluate("state.ticks")) for p in pages) - ticks0
                shown = [p.locator("#error").text_content() for p in pages]
                browser.close()
        finally:
            server.stop()
    assert not any(shown), shown
    print(
        f"server CPU, {args.assets} assets, {args.seconds:g} s each: idle {idle:.2f}% of one "
        f"core; with {args.pages} dashboards polling ({polls} polls, "
        f"{polls / args.seconds:.1f}/s) {live:.2f}% (target {TARGET_PERCENT:g}%)"
    )
    sys.exit(0 if live <= TARGET_PERCENT else 1)


if __name__ == "__main__":
    main()
