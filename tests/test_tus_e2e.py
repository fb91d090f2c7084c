"""tus clients (tuspy, tus-js-client) against a real `livepeer-emulator serve` subprocess:
full uploads, a resume after a dropped connection, and a resume across a restart."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tusclient.client import TusClient

from tests.conftest import SAMPLE_MP4
from tests.serving import ServerProcess

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024
# sample.mp4 (2 s, 320x240) is smaller than one chunk: a trailing `free` box, which every
# mp4 reader skips, makes it a real mp4 that takes several 64 KiB PATCHes.
PADDING = 3 * CHUNK + 1000
DATA = SAMPLE_MP4.read_bytes() + struct.pack(">I4s", PADDING, b"free") + bytes(PADDING - 8)
SHA256 = hashlib.sha256(DATA).hexdigest()
JS_DIR = Path(__file__).resolve().parent / "js"


@pytest.fixture
def clip(tmp_path: Path) -> str:
    path = tmp_path / "clip.mp4"
    path.write_bytes(DATA)
    return str(path)


def request_upload(server: ServerProcess, key: str) -> dict[str, Any]:
    status, body = server.request("POST", "/api/asset/request-upload", {"name": "tus clip"}, key)
    assert status == 200, body
    assert body["tusEndpoint"].startswith(server.api_url + "/asset/upload/tus?token=")
    return dict(body)


def get(server: ServerProcess, path: str, key: str) -> Any:
    status, body = server.request("GET", path, key=key)
    assert status == 200, body
    return body


def tus_head(server: ServerProcess, location: str) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection(urlsplit(server.root).netloc, timeout=30)
    try:
        conn.request("HEAD", urlsplit(location).path, headers={"Tus-Resumable": "1.0.0"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.headers)
    finally:
        conn.close()


def assert_processed(server: ServerProcess, key: str, created: dict[str, Any]) -> None:
    """The upload became a ready asset with the source's bytes, as a direct PUT would."""
    asset_id = created["asset"]["id"]
    asset = get(server, f"/api/asset/{asset_id}", key)
    assert asset["status"]["phase"] == "waiting"
    assert get(server, f"/api/task/{created['task']['id']}", key)["status"]["phase"] == "waiting"
    server.advance(10, key)
    asset = get(server, f"/api/asset/{asset_id}?details=1", key)
    assert asset["status"]["phase"] == "ready", asset
    video = asset["videoSpec"]["tracks"][0]
    assert (video["width"], video["height"]) == (320, 240)
    assert asset["videoSpec"]["duration"] == 2.0
    assert asset["size"] == len(DATA)
    assert {"hash": SHA256, "algorithm": "sha256"} in asset["hash"]
    playback_id = asset["playbackId"]
    conn = http.client.HTTPConnection(urlsplit(server.root).netloc, timeout=30)
    conn.request("GET", f"/asset/{playback_id}/video")
    assert hashlib.sha256(conn.getresponse().read()).hexdigest() == SHA256
    conn.close()
    assert not list((server.data_dir / "partial" / "tus").iterdir())


def test_tuspy_uploads_in_64k_chunks(
    serve: Callable[..., ServerProcess], key: str, clip: str
) -> None:
    server = serve("--clock", "manual")
    created = request_upload(server, key)
    uploader = TusClient(created["tusEndpoint"]).uploader(
        file_path=clip, chunk_size=CHUNK, metadata={"filename": "sample.mp4"}
    )
    uploader.upload()
    playback_id = created["asset"]["playbackId"]
    assert uploader.url == f"{server.api_url}/asset/upload/tus/directUpload%2F{playback_id}"
    assert_processed(server, key, created)


def _node_ready() -> str | None:
    """Why tus-js-client cannot run here, or None when it can (installing it if needed)."""
    if shutil.which("node") is None:
        return "node is not installed (CI installs it; see .ci/run)"
    if not (JS_DIR / "node_modules" / "tus-js-client").exists():
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not installed, so tests/js has no tus-js-client"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            return f"npm ci in tests/js failed: {done.stderr[-500:]}"
    return None


def test_tus_js_client_uploads_in_64k_chunks(
    serve: Callable[..., ServerProcess], key: str, clip: str
) -> None:
    reason = _node_ready()
    if reason:
        pytest.skip(reason)
    server = serve("--clock", "manual")
    created = request_upload(server, key)
    done = subprocess.run(
        ["node", "upload.mjs", created["tusEndpoint"], clip, str(CHUNK)],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    playback_id = created["asset"]["playbackId"]
    assert result == {
        "url": f"{server.api_url}/asset/upload/tus/directUpload%2F{playback_id}",
        "bytes": len(DATA),
    }
    assert_processed(server, key, created)


def test_resume_after_a_connection_dropped_mid_patch(
    serve: Callable[..., ServerProcess], key: str, clip: str
) -> None:
    server = serve("--clock", "manual")
    created = request_upload(server, key)
    first = TusClient(created["tusEndpoint"]).uploader(file_path=clip, chunk_size=CHUNK)
    first.upload(stop_at=len(DATA) // 2)
    offset = first.offset
    assert 0 < offset < len(DATA)

    # A PATCH announcing the rest, cut off after a few bytes that do reach the server.
    sent = 12_345
    head = (
        f"PATCH {urlsplit(first.url).path} HTTP/1.1\r\n"
        f"Host: {urlsplit(server.root).netloc}\r\n"
        "Tus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\n"
        f"Content-Length: {len(DATA) - offset}\r\n\r\n"
    )
    host, port = urlsplit(server.root).netloc.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + DATA[offset : offset + sent])

    status, headers = tus_head(server, first.url)
    assert status == 200
    assert headers["Upload-Offset"] == str(offset + sent)
    assert headers["Upload-Length"] == str(len(DATA))
    status, body = server.request("GET", f"/api/asset/{created['asset']['id']}", key=key)
    assert body["status"]["phase"] == "uploading"

    # Another client, knowing only the upload URL, finishes from the server's offset.
    second = TusClient(created["tusEndpoint"]).uploader(
        file_path=clip, url=first.url, chunk_size=CHUNK
    )
    assert second.offset == offset + sent
    second.upload()
    assert_processed(server, key, created)


def test_a_restart_keeps_an_unfinished_upload_resumable(
    serve: Callable[..., ServerProcess], key: str, tmp_path: Path, clip: str
) -> None:
    data_dir = tmp_path / "kept"
    server = serve("--clock", "manual", data_dir=data_dir)
    created = request_upload(server, key)
    first = TusClient(created["tusEndpoint"]).uploader(file_path=clip, chunk_size=CHUNK)
    first.upload(stop_at=3 * CHUNK)
    code, _ = server.stop()
    assert code == 0

    server = serve("--clock", "manual", data_dir=data_dir)
    # Same port is not guaranteed: the upload URL moves with the server's origin.
    url = server.api_url + first.url.split("/api", 1)[1]
    status, headers = tus_head(server, url)
    assert (status, headers["Upload-Offset"]) == (200, str(3 * CHUNK))
    second = TusClient(server.api_url).uploader(file_path=clip, url=url, chunk_size=CHUNK)
    second.upload()
    assert_processed(server, key, created)


def test_readme_tuspy_example_runs(serve: Callable[..., ServerProcess]) -> None:
    readme = (JS_DIR.parent.parent / "README.md").read_text()
    section = readme.split("## Resumable uploads (tus)", 1)[1].split("\n## ", 1)[0]
    [example] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    server = serve("--scenario", "instant")
    done = subprocess.run(
        [sys.executable, "-c", example.replace("http://127.0.0.1:3000", server.root)],
        cwd=JS_DIR.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    url, result = done.stdout.splitlines()
    assert url.startswith(server.api_url + "/asset/upload/tus/directUpload%2F")
    assert result == "ready 2.0"
