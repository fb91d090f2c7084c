"""The dashboard at `/`, driven in Debian's Chromium by role and text, as a developer uses it.

Same setup as tests/test_browser.py (its `browser` fixture: the system's chromium, skipped
without it except under CI). Each test starts a `serve --clock manual` and opens its page.
"""

from __future__ import annotations

import http.server
import re
import threading
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from tests.conftest import SAMPLE_MP4
from tests.serving import ServerProcess
from tests.test_browser import PLAY_PAST_SECONDS, PLAY_TIMEOUT_MS, _ready_asset, browser

__all__ = ["browser"]  # the fixture, shared with test_browser

pytestmark = pytest.mark.e2e
LIVE_MS = 2_500  # the 2 s, plus one poll's slack for a loaded machine


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    page.console_lines = console
    try:
        yield page
    except BaseException:
        raise
    finally:
        shown = page.locator("#error").text_content() if not page.is_closed() else ""
        context.close()
    assert not console, console
    assert not shown, f"the dashboard showed an error: {shown}"


def _upload(server: ServerProcess, key: str, name: str) -> str:
    status, created = server.request("POST", "/api/asset/request-upload", {"name": name}, key)
    assert status == 200, created
    put = urllib.request.Request(created["url"], data=SAMPLE_MP4.read_bytes(), method="PUT")
    with urllib.request.urlopen(put, timeout=30) as resp:
        assert resp.status == 200
    return str(created["asset"]["id"])


def _shown_time(ms: int) -> str:
    """An emulator time as the page writes it (app.js `time`: ISO, a space, UTC)."""
    at = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return at.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d} UTC"


def _open(tab: Any, server: ServerProcess) -> None:
    tab.goto(server.root + "/")
    tab.get_by_role("heading", name="Livepeer emulator").wait_for()


def test_the_page_is_served_at_the_root_without_a_key(serve: Any) -> None:
    server = serve("--api-key", "k1")
    with urllib.request.urlopen(server.root + "/", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b"<table" in resp.read()
    with urllib.request.urlopen(server.root + "/dashboard/app.js", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/javascript")
    status, body = server.request("GET", "/dashboard/..%2fapp.py")
    assert (status, body) == (404, {"errors": ["not found"]})
    # The API and the control plane are where they were.
    assert server.request("GET", "/api/asset")[0] == 401
    assert server.request("GET", "/_emulator/tenants")[0] == 401


def test_tenants_follow_the_control_plane_key_rules(serve: Any) -> None:
    server = serve("--api-key", "k1", "--api-key", "k2", "--admin-key", "adm")
    _upload(server, "k1", "one.mp4")
    _upload(server, "k2", "two.mp4")
    status, mine = server.request("GET", "/_emulator/tenants", key="k2")
    assert status == 200 and [t["assets"] for t in mine] == [1] and mine[0]["tenant"] == "k2"
    status, body = server.request("GET", "/_emulator/tenants?all=true", key="k2")
    assert status == 403, body
    status, everyone = server.request("GET", "/_emulator/tenants?all=true", key="adm")
    assert status == 200 and [t["tenant"] for t in everyone] == ["k1", "k2"], everyone
    status, shipped = server.request("GET", "/_emulator/scenarios", key="k1")
    assert status == 200 and "instant" in [s["name"] for s in shipped]


def test_assets_appear_live_and_the_advance_button_moves_them_on(
    serve: Any, key: str, tab: Any
) -> None:
    server = serve("--clock", "manual")
    _open(tab, server)
    tab.get_by_text("no tenant has data yet").wait_for(state="attached")
    _upload(server, key, "live-upload.mp4")
    table = tab.get_by_role("table").filter(has_text="Created")
    row = table.get_by_role("row").filter(has_text="live-upload.mp4")
    row.wait_for(timeout=LIVE_MS)  # the only tenant is chosen, and its asset listed
    assert "ready" not in row.inner_text()
    before = tab.locator("#clock-now").inner_text()
    tab.get_by_label("Seconds").fill("30")
    tab.get_by_role("button", name="Advance").click()
    row.filter(has_text="ready").wait_for(timeout=LIVE_MS)
    assert tab.locator("#clock-now").inner_text() != before
    status, clock = server.request("GET", "/_emulator/clock", key=key)
    assert status == 200 and clock["now"] >= 30_000, clock
    # Filters: by name and by phase.
    tab.get_by_label("Name").fill("nothing-like-it")
    table.get_by_text("No assets.").wait_for(timeout=LIVE_MS)
    tab.get_by_label("Name").fill("live")
    tab.get_by_label("Phase").select_option("ready")
    row.wait_for(timeout=LIVE_MS)


def test_asset_detail_plays_and_shows_what_the_asset_is(serve: Any, key: str, tab: Any) -> None:
    server = serve("--clock", "manual")
    asset = _ready_asset(server, key, SAMPLE_MP4)
    _open(tab, server)
    tab.get_by_role("button", name=SAMPLE_MP4.name).click()
    tab.get_by_role("heading", name=f"Asset: {SAMPLE_MP4.name}").wait_for()
    tab.wait_for_function("document.getElementById('player').src !== ''", timeout=10_000)
    tab.evaluate("document.getElementById('player').play()")
    tab.wait_for_function(
        f"document.getElementById('player').currentTime > {PLAY_PAST_SECONDS}",
        timeout=PLAY_TIMEOUT_MS,
    )
    detail = tab.locator("#detail")
    tab.get_by_role("img", name="Thumbnail at").first.wait_for(timeout=10_000)
    tracks = detail.locator("#tracks").inner_text()
    assert "video" in tracks and "h264" in tracks, tracks
    hashes = detail.locator("#hashes").inner_text()
    assert all(h["hash"] in hashes for h in asset["hash"]), hashes
    assert "upload" in detail.locator("#tasks").inner_text()
    # Delete takes two clicks; the asset then leaves the table.
    tab.get_by_role("button", name="Delete asset").click()
    tab.get_by_role("button", name="Confirm delete").click()
    tab.locator("#detail").wait_for(state="hidden", timeout=LIVE_MS)
    status, _ = server.request("GET", f"/api/asset/{asset['id']}", key=key)
    assert status in (404, 200)  # deleting, then gone
    status, listed = server.request("GET", "/api/asset", key=key)
    assert status == 200 and all(a["id"] != asset["id"] for a in listed), listed


def test_requests_list_calls_newest_first_with_secrets_masked(
    serve: Any, key: str, tab: Any
) -> None:
    server = serve("--clock", "manual")
    _upload(server, key, "journal.mp4")
    _open(tab, server)
    tab.get_by_role("button", name="Requests").click()
    table = tab.locator("#request-table")
    table.get_by_role("button", name="/api/asset/request-upload").wait_for(timeout=LIVE_MS)
    paths = table.locator("tbody tr td:nth-child(3)").all_inner_texts()
    assert paths[:2] == ["/api/asset/upload/direct", "/api/asset/request-upload"], paths
    # Each call's duration, as the journal measured it, in its own column.
    assert table.get_by_role("columnheader", name="Duration").count() == 1
    durations = table.locator("tbody tr td:nth-child(5)").all_inner_texts()
    assert all(re.fullmatch(r"\d+(\.\d)? ms", d) for d in durations[:2]), durations
    status, journaled = server.request("GET", "/_emulator/requests", key=key)
    assert status == 200 and all(c["durationMs"] >= 0 for c in journaled), journaled
    tab.get_by_role("button", name="/api/asset/request-upload").click()
    shown = tab.locator("#request-body")
    shown.get_by_text("Response body:").wait_for()
    text = shown.inner_text()
    assert re.search(r"^duration: \d+(\.\d)? ms$", text, re.M), text
    status, calls = server.request(
        "GET", "/_emulator/requests?path=/api/asset/upload/direct", key=key
    )
    token = calls[0]["query"]["token"]
    assert token not in text and "••••••" in text and "journal.mp4" in text, text
    # The dashboard's own polling is not in the journal.
    status, calls = server.request("GET", "/_emulator/requests", key=key)
    assert status == 200, calls
    assert [c["path"] for c in calls] == ["/api/asset/upload/direct", "/api/asset/request-upload"]


class _Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_webhooks_show_subscriptions_deliveries_and_resend(serve: Any, key: str, tab: Any) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        server = serve("--clock", "manual")
        hook_url = f"http://127.0.0.1:{receiver.server_port}/hook"
        body = {"name": "my receiver", "url": hook_url, "events": ["asset.ready"]}
        status, hook = server.request("POST", "/api/webhook", body, key)
        assert status == 201, hook
        _open(tab, server)
        asset_id = _upload(server, key, "hooked.mp4")
        # Send an event from the asset's detail.
        tab.get_by_role("button", name="hooked.mp4").click()
        tab.get_by_label("Event").select_option("asset.ready")
        tab.get_by_role("button", name="Send event").click()
        tab.locator("#asset-events").get_by_text("asset.ready").wait_for(timeout=LIVE_MS)
        tab.get_by_role("button", name="Webhooks").click()
        tab.locator("#webhook-table").get_by_text("my receiver").wait_for(timeout=LIVE_MS)
        deliveries = tab.locator("#delivery-table tbody tr")
        deliveries.filter(has_text="204").first.wait_for(timeout=LIVE_MS)
        assert deliveries.count() == 1
        tab.get_by_role("button", name="Resend asset.ready").first.click()
        tab.wait_for_function(
            "document.querySelectorAll('#delivery-table tbody tr').length === 2", timeout=LIVE_MS
        )
        status, log = server.request(
            "GET", f"/_emulator/webhooks/deliveries?asset={asset_id}", key=key
        )
        assert status == 200 and len(log) == 2, log
    finally:
        receiver.shutdown()
        receiver.server_close()


class _Failing(_Receiver):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(500)
        self.end_headers()


def test_deliveries_show_attempts_and_when_a_failed_one_is_retried(
    serve: Any, key: str, tab: Any
) -> None:
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        server = serve("--clock", "manual")
        hook_url = f"http://127.0.0.1:{receiver.server_port}/hook"
        # asset.failed: an event that processing (moved on by the advance below) never
        # sends by itself for this asset, so only the triggered delivery is listed.
        body = {"name": "broken receiver", "url": hook_url, "events": ["asset.failed"]}
        assert server.request("POST", "/api/webhook", body, key)[0] == 201
        asset_id = _upload(server, key, "retried.mp4")
        trigger = {"event": "asset.failed", "asset": asset_id}
        status, sent = server.request("POST", "/_emulator/webhooks/trigger", trigger, key)
        assert status == 200, sent
        status, log = server.request("GET", "/_emulator/webhooks/deliveries", key=key)
        assert status == 200 and len(log) == 1 and log[0]["attempt"] == 1, log
        retry_at = log[0]["nextAttemptAt"]
        assert retry_at == log[0]["createdAt"] + 5_000  # Studio's first backoff

        _open(tab, server)
        tab.get_by_role("button", name="Webhooks").click()
        table = tab.locator("#delivery-table")
        assert table.get_by_role("columnheader", name="Next retry").count() == 1
        first = table.locator("tbody tr").filter(has_text="500")
        first.filter(has_text=_shown_time(retry_at)).wait_for(timeout=LIVE_MS)
        # The retry goes when the clock reaches it; the new attempt carries the next one.
        assert server.request("POST", "/_emulator/clock/advance", {"seconds": 5}, key)[0] == 200
        rows = table.locator("tbody tr")
        tab.wait_for_function(
            "document.querySelectorAll('#delivery-table tbody tr').length === 2", timeout=LIVE_MS
        )
        status, log = server.request("GET", "/_emulator/webhooks/deliveries", key=key)
        assert [d["attempt"] for d in log] == [2, 1] and "nextAttemptAt" not in log[1], log
        rows.first.filter(has_text=_shown_time(log[0]["nextAttemptAt"])).wait_for(timeout=LIVE_MS)
        cells = rows.nth(1).locator("td").all_inner_texts()
        assert (cells[4], cells[5]) == ("1", ""), cells  # attempt 1: retried, nothing planned
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_the_scenario_dropdown_starts_on_the_scenario_in_force(
    serve: Any, key: str, tab: Any
) -> None:
    server = serve("--clock", "manual", "--scenario", "realistic")
    _upload(server, key, "any.mp4")
    _open(tab, server)
    tab.locator("#scenario-now").filter(has_text="realistic").wait_for(timeout=LIVE_MS)
    assert tab.get_by_label("Switch to").input_value() == "realistic"
    # It follows a switch made elsewhere (a test's PUT), not only the page's own.
    status, body = server.request("PUT", "/_emulator/scenario", {"name": "instant"}, key)
    assert status == 200, body
    tab.wait_for_function(
        "document.getElementById('scenario-select').value === 'instant'", timeout=LIVE_MS
    )


def test_the_scenario_switch_changes_the_tenants_scenario(serve: Any, key: str, tab: Any) -> None:
    server = serve("--clock", "manual")
    _upload(server, key, "any.mp4")
    _open(tab, server)
    tab.locator("#scenario-now").filter(has_text="default").wait_for(timeout=LIVE_MS)
    tab.get_by_label("Switch to").select_option("instant")
    tab.get_by_role("button", name="Switch scenario").click()
    tab.locator("#scenario-now").filter(has_text="instant (tenant)").wait_for(timeout=LIVE_MS)
    status, scenario = server.request("GET", "/_emulator/scenario", key=key)
    assert status == 200 and (scenario["name"], scenario["scope"]) == ("instant", "tenant")


def test_with_keys_the_page_asks_for_one_and_shows_only_its_tenant(serve: Any, tab: Any) -> None:
    server = serve("--clock", "manual", "--api-key", "k1", "--api-key", "k2", "--admin-key", "adm")
    _upload(server, "k1", "mine.mp4")
    _upload(server, "k2", "theirs.mp4")
    _open(tab, server)
    tab.get_by_text("This server has API keys configured").wait_for()
    assert tab.get_by_role("button", name="theirs.mp4").count() == 0
    tab.get_by_label("API key").fill("k1")
    tab.get_by_role("button", name="Use key").click()
    tab.get_by_role("button", name="mine.mp4").wait_for(timeout=LIVE_MS)
    options = tab.locator("#tenant-select option").all_inner_texts()
    assert len(options) == 2 and "k2" not in " ".join(options), options
    assert tab.get_by_role("button", name="theirs.mp4").count() == 0
    tab.get_by_role("button", name="Requests").click()
    tab.locator("#request-table").get_by_text("/api/asset/request-upload").wait_for(timeout=LIVE_MS)
    assert "k2" not in tab.locator("#request-table").inner_text()
    # An admin key sees both tenants, and picks one.
    tab.get_by_label("API key").fill("adm")
    tab.get_by_role("button", name="Use key").click()
    tab.wait_for_function("document.querySelectorAll('#tenant-select option').length === 4")
    tab.get_by_label("Tenant", exact=True).select_option("k2")
    tab.get_by_role("button", name="Assets").click()
    tab.get_by_role("button", name="theirs.mp4").wait_for(timeout=LIVE_MS)
