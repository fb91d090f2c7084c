"""The `serve` command itself: its startup line, settings, persistence and shutdown."""

from __future__ import annotations

import random
import signal
import socket
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_MP4
from tests.serving import emulator_command

pytestmark = pytest.mark.e2e


def put(url: str, data: bytes) -> int:
    req = urllib.request.Request(url, data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def test_startup_line_names_api_url_data_dir_and_tenancy(serve, tmp_path) -> None:
    server = serve(data_dir=tmp_path / "d1")
    line = server.startup_line
    assert f"API at {server.root}/api" in line
    assert str(tmp_path / "d1") in line
    assert "every bearer token is its own tenant" in line
    assert (tmp_path / "d1" / "emulator.sqlite3").exists()
    code, seconds = server.stop(signal.SIGTERM)
    assert code == 0
    assert seconds < 2.0


def test_startup_line_on_every_interface_gives_a_url_that_works_here(serve) -> None:
    # 127.0.0.1 answers for 0.0.0.0 and for "" (IPv4 and IPv6 wildcards); the serve
    # fixture asked /_emulator/health at the printed URL, so each URL worked.
    for host in ("0.0.0.0", ""):
        server = serve("--host", host)
        line = server.startup_line
        assert server.root.startswith("http://127.0.0.1:")
        assert f"API at {server.root}/api (listening on all interfaces) · " in line
    # asyncio binds "::" IPv6-only, so 127.0.0.1 would be refused there.
    if socket.has_ipv6 and _can_bind("::1"):
        server = serve("--host", "::")
        assert server.root.startswith("http://[::1]:")
        assert "(listening on all interfaces)" in server.startup_line
    # The public URL is named beside the local one, which stays the one to call from here.
    public = serve("--host", "0.0.0.0", "--public-url", "http://livepeer:3000/")
    assert public.root.startswith("http://127.0.0.1:")
    assert "· public URL http://livepeer:3000 · " in public.startup_line
    # One interface: no claim about the others, no public URL that was not given.
    local = serve("--host", "127.0.0.1")
    assert "all interfaces" not in local.startup_line
    assert "public URL" not in local.startup_line
    assert local.startup_line.count("/api") == 1


def _can_bind(host: str) -> bool:
    try:
        with socket.create_server((host, 0), family=socket.AF_INET6):
            return True
    except OSError:
        return False


def test_api_keys_from_flags_and_env(serve) -> None:
    server = serve("--api-key", "alpha", env={"LIVEPEER_EMULATOR_API_KEY": "ignored"})
    assert "1 API key(s) accepted" in server.startup_line
    assert server.request("GET", "/api/asset", key="alpha")[0] == 200
    assert server.request("GET", "/api/asset", key="ignored") == (
        401,
        {"errors": ["no token ignored found"]},
    )
    # Env vars alone, comma-separated, when no flag is given.
    env_only = serve(
        env={"LIVEPEER_EMULATOR_API_KEY": "k1,k2", "LIVEPEER_EMULATOR_CLOCK": "manual"}
    )
    assert "2 API key(s) accepted" in env_only.startup_line
    assert "clock manual" in env_only.startup_line
    assert env_only.request("GET", "/api/asset", key="k2")[0] == 200
    assert env_only.request("GET", "/api/asset", key="k3")[0] == 401
    code, seconds = env_only.stop(signal.SIGINT)
    assert (code, seconds < 2.0) == (0, True)


def test_public_url_is_used_for_upload_and_media_urls(serve) -> None:
    server = serve("--public-url", "http://livepeer:3000/", "--scenario", "instant")
    status, body = server.request("POST", "/api/asset/request-upload", {"name": "x"}, key="k")
    assert status == 200
    assert body["url"].startswith("http://livepeer:3000/api/asset/upload/direct?token=")
    assert body["tusEndpoint"].startswith("http://livepeer:3000/api/asset/upload/tus?token=")
    # Without it, URLs follow the Host the client used.
    plain = serve()
    _, body = plain.request(
        "POST",
        "/api/asset/request-upload",
        {"name": "x"},
        key="k",
        headers={"Host": "example.test:8080"},
    )
    assert body["url"].startswith("http://example.test:8080/api/asset/upload/direct")


def test_assets_survive_a_restart_and_processing_resumes(serve, tmp_path) -> None:
    data = tmp_path / "persist"
    first = serve("--clock", "manual", data_dir=data)
    status, created = first.request("POST", "/api/asset/request-upload", {"name": "keep"}, key="k")
    assert status == 200
    assert put(created["url"], SAMPLE_MP4.read_bytes()) == 200
    first.advance(1.0, "k")  # into processing, not yet ready
    asset_id = created["asset"]["id"]
    _, before = first.request("GET", f"/api/asset/{asset_id}", key="k")
    assert before["status"]["phase"] == "processing"
    pending = first.request("POST", "/api/asset/request-upload", {"name": "later"}, key="k")[1]
    assert first.stop()[0] == 0

    second = serve("--clock", "manual", data_dir=data)
    _, after = second.request("GET", f"/api/asset/{asset_id}", key="k")
    assert after == before
    _, clock = second.request("GET", "/_emulator/clock", key="k")
    assert clock["now"] >= before["status"]["updatedAt"]  # time never goes backwards
    second.advance(5, "k")
    _, done = second.request("GET", f"/api/asset/{asset_id}", key="k")
    assert done["status"]["phase"] == "ready"
    _, task = second.request("GET", f"/api/task/{created['task']['id']}", key="k")
    assert task["status"]["phase"] == "completed"
    # Upload URLs handed out before the restart still work after it.
    # (Each run listens on a fresh port here, so point the old URL at the new one.)
    assert put(pending["url"].replace(first.root, second.root), SAMPLE_MP4.read_bytes()) == 200
    _, listed = second.request("GET", "/api/asset", key="k")
    assert {a["name"] for a in listed} == {"keep", "later"}


def test_refuses_to_start_without_ffprobe(tmp_path) -> None:
    result = subprocess.run(
        [
            *emulator_command(),
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path),
            "--ffprobe",
            str(tmp_path / "no-such-ffprobe"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.count("\n") == 0, message
    assert message.startswith("livepeer-emulator: cannot start:")
    assert "apt-get install ffmpeg" in message and "LIVEPEER_EMULATOR_FFPROBE" in message


def test_bad_settings_are_one_clear_line(tmp_path) -> None:
    result = subprocess.run(
        [*emulator_command(), "serve", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "LIVEPEER_EMULATOR_CLOCK": "sometimes"},
    )
    assert result.returncode == 2
    assert "LIVEPEER_EMULATOR_CLOCK" in result.stderr and "Traceback" not in result.stderr


def corrupt_database(kind: str, tmp_path: Path) -> bytes:
    """Bytes that are not a usable database: random, text, or a valid SQLite header
    followed by garbage pages (which SQLite only notices once it reads the schema)."""
    if kind == "random-bytes":
        return random.Random(1).randbytes(4096)
    if kind == "text-file":
        return b"not a database, just some notes\n" * 20
    real = tmp_path / "real.sqlite3"
    db = sqlite3.connect(real)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    return real.read_bytes()[:100] + random.Random(2).randbytes(4096 - 100)


@pytest.mark.parametrize("kind", ["random-bytes", "text-file", "sqlite-header-garbage-pages"])
def test_corrupt_database_is_one_clear_line_and_left_untouched(tmp_path, kind) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "emulator.sqlite3"
    original = corrupt_database(kind, tmp_path)
    database.write_bytes(original)
    # The timeout is the assertion that it exits promptly (it used to hang for ever).
    result = subprocess.run(
        [*emulator_command(), "serve", "--port", "0", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        timeout=10,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "Traceback" not in message
    assert message.count("\n") == 0, message
    assert message.startswith("livepeer-emulator: cannot start:"), message
    assert str(database) in message
    assert "move it away" in message and "--data-dir" in message
    # Bad input loses nothing: the file is as it was, with no journal beside it.
    assert database.read_bytes() == original
    assert sorted(p.name for p in data.glob("emulator.sqlite3*")) == ["emulator.sqlite3"]


def test_python_dash_m_works(tmp_path) -> None:
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "emulator", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--data-dir",
        "--api-key",
        "--public-url",
        "--clock",
        "--scenario",
    ):
        assert flag in result.stdout


def test_interrupted_direct_upload_loses_nothing_and_can_be_retried(serve, tmp_path) -> None:
    import socket
    from urllib.parse import urlsplit

    server = serve("--clock", "manual", data_dir=tmp_path / "cut")
    _, created = server.request("POST", "/api/asset/request-upload", {"name": "cut"}, key="k")
    target = urlsplit(created["url"])
    data = SAMPLE_MP4.read_bytes()
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        sock.sendall(
            f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data[: len(data) // 3]
        )
    # The retry below waits for the server to notice the first attempt died.
    asset_path = f"/api/asset/{created['asset']['id']}"
    _, asset = server.request("GET", asset_path, key="k")
    assert asset["status"]["phase"] == "uploading"
    assert put(created["url"], data) == 200
    server.advance(10, "k")
    _, asset = server.request("GET", asset_path, key="k")
    assert asset["status"]["phase"] == "ready"
    assert asset["size"] == len(data)
    assert list((tmp_path / "cut" / "partial").glob("*.part")) == []
