"""`livepeer-emulator healthcheck`: the command the image's HEALTHCHECK runs.

It must say healthy (exit 0) only when a server answers /_emulator/health on the host and
port the settings name, and unhealthy (exit 1) otherwise: nothing listening, a server that
could not start (no ffprobe, unusable data dir), or something else answering the port.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from emulator.healthcheck import health_url
from emulator.settings import Settings
from tests.serving import ServerProcess, emulator_command


def healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # Only the LIVEPEER_EMULATOR_* vars given here: the developer's own must not leak in.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_EMULATOR_")}
    return subprocess.run(
        [*emulator_command(), "healthcheck", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def port_of(server: ServerProcess) -> int:
    port = urlsplit(server.root).port
    assert port is not None
    return port


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listened, released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def impostor() -> Iterator[Callable[[int, bytes], int]]:
    """A plain HTTP server that answers every GET with a given status and body."""
    servers: list[http.server.HTTPServer] = []

    def start(status: int, body: bytes) -> int:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.e2e
def test_healthy_when_the_server_serves_port_from_env_or_flag(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve()
    port = port_of(server)

    by_env = healthcheck(env={"LIVEPEER_EMULATOR_PORT": str(port)})
    assert by_env.returncode == 0, by_env.stdout + by_env.stderr
    assert by_env.stdout.strip() == f"healthy: http://127.0.0.1:{port}/_emulator/health ok"

    by_flag = healthcheck("--port", str(port), env={"LIVEPEER_EMULATOR_PORT": "1"})
    assert by_flag.returncode == 0, by_flag.stdout + by_flag.stderr

    # As in the image: the server listens on 0.0.0.0 and is asked on loopback.
    wide = healthcheck(
        env={"LIVEPEER_EMULATOR_HOST": "0.0.0.0", "LIVEPEER_EMULATOR_PORT": str(port)}
    )
    assert wide.returncode == 0, wide.stdout + wide.stderr

    code, _ = server.stop()
    assert code == 0
    after = healthcheck(env={"LIVEPEER_EMULATOR_PORT": str(port)})
    assert after.returncode == 1
    assert after.stdout.startswith("unhealthy: ")


def test_unhealthy_when_nothing_listens(closed_port: int) -> None:
    result = healthcheck(env={"LIVEPEER_EMULATOR_PORT": str(closed_port)})
    assert result.returncode == 1
    assert result.stdout.startswith(
        f"unhealthy: http://127.0.0.1:{closed_port}/_emulator/health unreachable: [Errno "
    )
    assert result.stdout.strip().endswith("Connection refused")


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b'{"status":"ok"}'), (200, b'{"status":"starting"}'), (200, b"<html>ok</html>")],
)
def test_unhealthy_when_something_else_answers(
    impostor: Callable[[int, bytes], int], status: int, body: bytes
) -> None:
    port = impostor(status, body)
    result = healthcheck("--port", str(port))
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith(f"unhealthy: http://127.0.0.1:{port}/_emulator/health ")


def test_a_stub_answering_like_the_server_is_healthy(impostor: Callable[[int, bytes], int]) -> None:
    # The control case for the test above: the body decides, not the process behind it.
    port = impostor(200, b'{"status": "ok"}')
    assert healthcheck("--port", str(port)).returncode == 0


def test_unhealthy_on_bad_settings() -> None:
    result = healthcheck(env={"LIVEPEER_EMULATOR_PORT": "three-thousand"})
    assert result.returncode == 1
    assert "LIVEPEER_EMULATOR_PORT" in result.stderr
    random_port = healthcheck("--port", "0")
    assert random_port.returncode == 1
    assert "port is 0" in random_port.stdout


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ffprobe", "/nonexistent/ffprobe"), "is not an executable file"),
        (("--data-dir", "{file}"), "Not a directory"),
    ],
)
def test_a_server_that_cannot_serve_never_becomes_healthy(
    tmp_path: Path, closed_port: int, args: tuple[str, ...], message: str
) -> None:
    """No ffprobe or no usable data dir: the server exits before it listens."""
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    argv = [a.replace("{file}", str(a_file)) for a in args]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(tmp_path / "data")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_EMULATOR_")}
    served = subprocess.run(
        [*emulator_command(), "serve", "--port", str(closed_port), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert served.returncode == 2
    assert message in served.stderr
    assert "Traceback" not in served.stderr
    assert healthcheck("--port", str(closed_port)).returncode == 1


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:3000/_emulator/health"),
        ("::", "http://[::1]:3000/_emulator/health"),
        ("127.0.0.2", "http://127.0.0.2:3000/_emulator/health"),
        ("::1", "http://[::1]:3000/_emulator/health"),
    ],
)
def test_a_server_on_every_interface_is_asked_on_loopback(host: str, url: str) -> None:
    assert health_url(Settings(host=host, port=3000)) == url


async def test_the_server_listens_only_once_its_database_is_open(
    tmp_path: Path, unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What makes a healthy answer mean "can serve": the port opens after the DB does."""
    import asyncio
    from contextlib import suppress

    from aiohttp import web

    from emulator import cli
    from emulator.app import create_app
    from emulator.healthcheck import check
    from emulator.store import Store

    events: list[str] = []
    listening = asyncio.Event()
    real_open, real_start = Store.open, web.TCPSite.start

    async def open_then_record(path: Path, reserve: Any = None) -> Store:
        store = await real_open(path, reserve)
        events.append("database open")
        return store

    async def start_then_record(site: web.TCPSite) -> None:
        events.append("listening")
        await real_start(site)
        listening.set()

    monkeypatch.setattr(Store, "open", open_then_record)
    monkeypatch.setattr(web.TCPSite, "start", start_then_record)
    settings = Settings(data_dir=tmp_path / "data", port=unused_tcp_port, clock="manual")
    assert check(settings, 1.0)[0] is False
    server = asyncio.create_task(cli._run(create_app(settings), settings))
    try:
        await asyncio.wait_for(listening.wait(), 20)
        assert events == ["database open", "listening"]
        healthy, why = await asyncio.to_thread(check, settings, 5.0)
        assert healthy, why
    finally:
        server.cancel()
        with suppress(asyncio.CancelledError):
            await server
