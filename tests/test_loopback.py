"""The emulator's own calls to a server on loopback ignore the proxy variables.

A CI job often sets `http_proxy`/`HTTP_PROXY`/`https_proxy` without `no_proxy` for
127.0.0.1. Here they name a port where nothing listens: the fixture's handle (in-process
and against an external server), `healthcheck` and `webhooks trigger` must still work, while
a plain urllib call, the control case, fails through that dead proxy.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator import loopback
from emulator.testing import Emulator, InProcessServer
from tests.conftest import SAMPLE_MP4
from tests.serving import emulator_command

pytest_plugins = ["pytester"]

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture
def dead_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every proxy variable names a loopback port that refuses connections (bound by this
    fixture, never listening, so nothing else can take it), and nothing is exempt."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{held.getsockname()[1]}"
        for var in PROXY_VARS:
            monkeypatch.setenv(var, proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        yield proxy


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    with InProcessServer(tmp_path_factory.mktemp("loopback")) as running:
        yield running


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_EMULATOR_")}
    return subprocess.run(
        [*emulator_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_plain_urllib_call_goes_through_the_dead_proxy(
    dead_proxy: str, server: InProcessServer
) -> None:
    """The control case: without the bypass, the proxy variables do break loopback calls."""
    # A fresh opener: urlopen's shared one keeps the variables of its first call.
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.build_opener().open(server.base_url + "/_emulator/health", timeout=10)


HANDLE_FLOW = f"""
import urllib.error
import urllib.request

import pytest

SAMPLE = {str(SAMPLE_MP4)!r}


def test_the_handle_behind_a_dead_proxy(livepeer_emulator):
    # The proxy variables did reach this process: a plain call fails.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(livepeer_emulator.base_url + "/_emulator/health", timeout=10)

    start = livepeer_emulator.now()
    asset = livepeer_emulator.upload(SAMPLE, name="behind-a-proxy.mp4")
    ready = livepeer_emulator.wait_for_asset(asset["id"])
    assert ready["videoSpec"]["duration"] == 2.0
    assert livepeer_emulator.now() > start
    assert livepeer_emulator.advance(1)["now"] == livepeer_emulator.now()
    status, listed = livepeer_emulator.request("GET", "/api/asset")
    assert status == 200 and [a["id"] for a in listed] == [asset["id"]]
    puts = livepeer_emulator.requests(method="PUT")
    assert [c["status"] for c in puts] == [200]
    assert livepeer_emulator.request_detail(puts[0]["id"])["id"] == puts[0]["id"]
    assert livepeer_emulator.use_scenario("instant")["name"] == "instant"
    assert livepeer_emulator.clear_requests() >= 3
    assert livepeer_emulator.requests() == []
"""


def test_the_fixture_works_behind_a_dead_proxy_in_process(
    dead_proxy: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIVEPEER_EMULATOR_URL", raising=False)
    pytester.makepyfile(HANDLE_FLOW)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_fixture_works_behind_a_dead_proxy_against_a_server(
    dead_proxy: str, pytester: pytest.Pytester, server: InProcessServer
) -> None:
    # --livepeer-emulator-url also checks the server is there (GET /_emulator/health).
    pytester.makepyfile(HANDLE_FLOW)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--livepeer-emulator-url=http://localhost:{port(server)}"
    )
    result.assert_outcomes(passed=1)


def test_healthcheck_and_trigger_work_behind_a_dead_proxy(
    dead_proxy: str, server: InProcessServer
) -> None:
    health = cli("healthcheck", "--port", str(port(server)))
    assert health.returncode == 0, health.stdout + health.stderr
    assert health.stdout.startswith("healthy: ")

    handle = Emulator(server.base_url)  # in this process, under the same variables
    asset = handle.upload(SAMPLE_MP4)
    for url in (server.base_url, f"http://localhost:{port(server)}"):
        sent = cli(
            "webhooks", "trigger", "asset.ready", "--asset", asset["id"],
            "--api-key", handle.api_key, "--url", url,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sent.stdout.startswith(f"sent asset.ready about asset {asset['id']}")
    # The server answers errors through the same path: a 404 is reported, not "unreachable".
    missing = cli(
        "webhooks", "trigger", "asset.ready", "--asset", "nope",
        "--api-key", handle.api_key, "--url", server.base_url,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stdout.startswith(f"{server.base_url}/_emulator/webhooks/trigger answered 404")


def port(server: InProcessServer) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("127.8.0.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost.", True),
        ("api.localhost", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("emulator", False),
        ("localhost.example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_which_hosts_are_loopback(host: str | None, loop: bool) -> None:
    assert loopback.is_loopback(host) is loop


@pytest.fixture
def recording_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A forward proxy on loopback that answers every GET itself and records its target."""
    seen: list[str] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    proxy = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    yield seen
    proxy.shutdown()
    proxy.server_close()


def test_other_hosts_go_the_way_the_environment_says(
    recording_proxy: list[str], server: InProcessServer
) -> None:
    # An emulator in a service container, reached by name, goes through the proxy (which
    # answers for it here, so no name is ever looked up) ...
    answer = loopback.send("GET", "http://emulator:3000/_emulator/health", timeout=10)
    assert (answer.status, answer.json()) == (200, {})
    assert recording_proxy == ["http://emulator:3000/_emulator/health"]
    # ... while loopback never does, even with a live proxy.
    answer = loopback.send("GET", server.base_url + "/_emulator/health", timeout=10)
    assert (answer.status, answer.json()) == (200, {"status": "ok"})
    assert recording_proxy == ["http://emulator:3000/_emulator/health"]


def test_no_answer_is_unreachable_and_error_statuses_are_answers(
    server: InProcessServer, tmp_path: Path
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{held.getsockname()[1]}/"
        with pytest.raises(loopback.Unreachable, match="refused") as caught:
            loopback.send("GET", closed, timeout=10)
    assert caught.value.url == closed
    answer = loopback.send("GET", server.base_url + "/api/asset", timeout=10)
    assert answer.status == 401 and "errors" in answer.json()
    cut = loopback.send("GET", server.base_url + "/_emulator/health", timeout=10, limit=3)
    assert cut == loopback.Answer(200, b'{"s')
