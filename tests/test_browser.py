"""A real browser plays the emulator's outputs, from a page on another origin.

Debian's `chromium`, driven by Playwright (its Node driver from the PyPI wheel; no browser
download), loads tests/browser/page.html from a second local server, so every request to
the emulator is cross-origin, as from a web app. hls.js plays `playbackUrl`, a `<video>`
plays the MP4 rendition, the first thumbnail of the VTT draws into a canvas without
tainting it, and the official Player's source picker (`getSrc` from `@livepeer/core`)
finds the hls, video and vtt sources in the playback info, for an .mp4 and a .webm upload.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.conftest import FIXTURES, SAMPLE_MP4
from tests.helpers import npm_project
from tests.serving import ServerProcess

pytestmark = pytest.mark.e2e
PROJECT = Path(__file__).resolve().parent / "browser"
PLAY_PAST_SECONDS = 1.0
PLAY_TIMEOUT_MS = 20_000


def _missing(reason: str) -> NoReturn:
    # A skipped browser test in CI would hide a broken setup: there it fails instead.
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{reason} (CI is set, so this fails rather than skips; see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def node_project() -> Path:
    return npm_project(PROJECT, "@livepeer/core", "the browser test (hls.js, @livepeer/core)")


class _PageHandler(http.server.SimpleHTTPRequestHandler):
    # Module scripts need a JavaScript type; the stdlib guesses from the system's mime tables.
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".html": "text/html",
    }

    # Pages a test writes (path → HTML), served like the files: a page Playwright made up
    # itself would not be in the loopback address space, and Chromium would then refuse
    # its requests to the emulator (Private Network Access).
    made: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.made.get(self.path)
        if body is None:
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin(node_project: Path) -> Iterator[str]:
    """The test page's own origin: a second local server, on another port than the emulator."""
    handler = functools.partial(_PageHandler, directory=str(node_project))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module: Debian's `chromium`, never a downloaded one."""
    executable = shutil.which("chromium")
    if not executable:
        _missing("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable)
        yield chromium
        chromium.close()


class Tab:
    """A Playwright page on the test page, with what its console said (for failure messages)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def evaluate(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)


@pytest.fixture
def page(browser: Any, page_origin: str) -> Iterator[Tab]:
    context = browser.new_context()
    tab = Tab(context.new_page())
    tab.page.goto(f"{page_origin}/page.html")
    try:
        tab.page.wait_for_function("window.coreLoaded === true", timeout=10_000)
    except Exception as err:
        lines = "\n".join(tab.console)
        raise AssertionError(f"the test page did not load: {err}\n{lines}") from err
    yield tab
    context.close()


def _put(url: str, data: bytes) -> int:
    req = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def _ready_asset(
    server: ServerProcess, key: str, media: Path, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """request-upload + PUT, then the manual clock moved on until the asset is ready."""
    body: dict[str, Any] = {"name": media.name}
    if policy is not None:
        body["playbackPolicy"] = policy
    status, created = server.request("POST", "/api/asset/request-upload", body, key)
    assert status == 200, created
    assert _put(created["url"], media.read_bytes()) == 200
    asset_id = created["asset"]["id"]
    asset: dict[str, Any] = {}
    began = time.monotonic()
    for _ in range(60):
        server.advance(30, key)
        status, asset = server.request("GET", f"/api/asset/{asset_id}", key=key)
        assert status == 200, asset
        phase = asset["status"]["phase"]
        assert phase != "failed", f"{media.name} failed: {asset['status']}\n{server.stderr()}"
        if phase == "ready" or time.monotonic() - began > 60:
            break
    assert asset["status"]["phase"] == "ready", f"{media.name} not ready: {asset['status']}"
    return asset


@pytest.mark.parametrize(
    "media", [SAMPLE_MP4, FIXTURES / "sample-640x360.webm"], ids=["mp4", "webm"]
)
def test_a_page_on_another_origin_plays_the_outputs(
    serve: Any, key: str, page: Tab, page_origin: str, media: Path
) -> None:
    server = serve("--clock", "manual")
    assert server.root != page_origin
    asset = _ready_asset(server, key, media)
    status, info = server.request("GET", f"/api/playback/{asset['playbackId']}", key=key)
    assert status == 200, info
    sources = info["meta"]["source"]
    hrns = [source["hrn"] for source in sources]
    assert hrns[-2:] == ["HLS (TS)", "Thumbnails"] and set(hrns[:-2]) == {"MP4"}, sources
    mp4_url = sources[0]["url"]
    vtt_url = sources[-1]["url"]
    assert sources[-2]["url"] == asset["playbackUrl"], (sources, asset["playbackUrl"])
    # Each check runs whatever the others did, so that one failure shows every symptom.
    hls = page.evaluate(
        "([url, target, ms]) => play(url, true, target, ms)",
        [asset["playbackUrl"], PLAY_PAST_SECONDS, PLAY_TIMEOUT_MS],
    )
    video = page.evaluate(
        "([url, target, ms]) => play(url, false, target, ms)",
        [mp4_url, PLAY_PAST_SECONDS, PLAY_TIMEOUT_MS],
    )
    thumbnail = page.evaluate("(url) => drawThumbnail(url)", vtt_url)
    picked = page.evaluate("(info) => pickSources(info)", info)

    problems: list[str] = []
    if not (hls["outcome"] == "played" and hls["currentTime"] > PLAY_PAST_SECONDS):
        problems.append(f"hls.js did not play {asset['playbackUrl']}: {hls}")
    if not (video["outcome"] == "played" and video["currentTime"] > PLAY_PAST_SECONDS):
        problems.append(f"<video src={mp4_url}> did not play: {video}")
    elif (video["videoWidth"], video["videoHeight"]) != (sources[0]["width"], sources[0]["height"]):
        problems.append(f"the MP4's size is not its playback info's {sources[0]}: {video}")
    if not (
        thumbnail["error"] is None
        and (thumbnail["vttType"] or "").startswith("text/vtt")
        and thumbnail["imageUrl"].startswith(vtt_url.rsplit("/", 1)[0] + "/")
        and thumbnail["width"] > 0
        and thumbnail["height"] > 0
        and thumbnail["dataUrlPrefix"] == "data:image/png;base64,"
    ):
        problems.append(f"the first thumbnail of {vtt_url} did not draw untainted: {thumbnail}")
    mp4_urls = {source["url"] for source in sources if source["hrn"] == "MP4"}
    if not (
        {source["type"] for source in picked} == {"hls", "video", "vtt"}
        and [s["src"] for s in picked if s["type"] == "hls"] == [asset["playbackUrl"]]
        and [s["src"] for s in picked if s["type"] == "vtt"] == [vtt_url]
        and {s["src"] for s in picked if s["type"] == "video"} == mp4_urls
    ):
        problems.append(f"getSrc from @livepeer/core picked {picked} from {info}")
    if problems:
        console = "\n".join(page.console)
        codecs = page.evaluate("codecSupport()")
        pytest.fail(
            "\n".join(problems)
            + f"\nbrowser: {codecs}\nconsole:\n{console}\nserver log:\n{server.stderr()}"
        )


def test_the_readme_hls_example_plays(serve: Any, key: str, browser: Any, page_origin: str) -> None:
    """The README's hls.js page, as written (hls.js from npm instead of the CDN, and a real
    playbackUrl), plays from another origin."""
    from tests.test_docs import code_blocks

    example = next(block for block in code_blocks("html") if "hls.loadSource" in block)
    server = serve("--clock", "manual")
    asset = _ready_asset(server, key, SAMPLE_MP4)
    cdn = "https://cdn.jsdelivr.net/npm/hls.js@1"
    placeholder = "http://127.0.0.1:3000/hls/<playbackId>/index.m3u8"
    assert cdn in example and placeholder in example
    html = example.replace(cdn, "/node_modules/hls.js/dist/hls.min.js")
    html = html.replace(placeholder, asset["playbackUrl"])
    _PageHandler.made["/readme.html"] = html.encode()
    context = browser.new_context()
    try:
        tab = Tab(context.new_page())
        tab.page.goto(f"{page_origin}/readme.html")
        try:
            tab.page.wait_for_function(
                f"document.getElementById('player').currentTime > {PLAY_PAST_SECONDS}",
                timeout=PLAY_TIMEOUT_MS,
            )
        except Exception as err:
            console = "\n".join(tab.console)
            pytest.fail(f"the README's example did not play: {err}\nconsole:\n{console}")
    finally:
        context.close()
        _PageHandler.made.pop("/readme.html", None)


def test_hls_js_plays_a_jwt_gated_asset_from_its_tokenised_url(
    serve: Any, key: str, page: Tab
) -> None:
    """Given only `…/index.m3u8?jwt=…`, hls.js plays (the playlists hand the token on to
    the variants and segments); without the token, it gets the CDN's 401."""
    import base64

    import jwt

    server = serve("--clock", "manual")
    asset = _ready_asset(server, key, SAMPLE_MP4, policy={"type": "jwt"})
    status, signing_key = server.request("POST", "/api/access-control/signing-key", {}, key)
    assert status == 201, signing_key
    status, clock = server.request("GET", "/_emulator/clock", key=key)
    now = clock["now"] // 1000
    claims = {"sub": asset["playbackId"], "pub": signing_key["publicKey"], "exp": now + 600}
    token = jwt.encode(claims, base64.b64decode(signing_key["privateKey"]), "ES256")
    tokenised = f"{asset['playbackUrl']}?jwt={token}"
    script = "([url, target, ms]) => play(url, true, target, ms)"
    played = page.evaluate(script, [tokenised, PLAY_PAST_SECONDS, PLAY_TIMEOUT_MS])
    refused = page.evaluate(script, [asset["playbackUrl"], PLAY_PAST_SECONDS, PLAY_TIMEOUT_MS])
    console = "\n".join(page.console)
    assert played["outcome"] == "played", f"{played}\nconsole:\n{console}\n{server.stderr()}"
    assert played["currentTime"] > PLAY_PAST_SECONDS
    assert refused["outcome"] == "error", refused
    assert any("(HTTP 401)" in error for error in refused["errors"]), refused
