"""A full disk is survivable (issue 11.9): uploads answer a clear 507, DELETE keeps
working so space can be freed, and the server recovers without a restart.

The server runs with its data dir on a 24 MiB tmpfs of its own, mounted inside a new user
and mount namespace (`unshare -rm`, which needs no root), and the test fills that disk
through /proc/PID/root, as another process on the machine would.
"""

from __future__ import annotations

import errno
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests import serving
from tests.conftest import SAMPLE_MP4

pytestmark = pytest.mark.e2e

WRAPPER = """#!/bin/sh
# Give the server a small disk of its own at its data dir, then run it.
mount -t tmpfs -o size=24m tmpfs "$SMALL_DISK" && exec "$@"
"""


def put(url: str, data: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def fill(path: Path) -> None:
    """Write to `path` until the disk it is on is full, to the last 4 KiB block."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1024 * 1024, 4096):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def small_disk_server(serve, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    if shutil.which("unshare") is None:
        pytest.fail("this test needs util-linux's unshare (apt-get install util-linux)")
    wrapper = tmp_path / "small-disk.sh"
    wrapper.write_text(WRAPPER)
    data = tmp_path / "small"
    data.mkdir()
    real = serving.emulator_command()
    prefix = ["unshare", "-rm", "--propagation", "private", "sh", str(wrapper)]
    monkeypatch.setattr(serving, "emulator_command", lambda: [*prefix, *real])
    server = serve("--clock", "manual", data_dir=data, env={"SMALL_DISK": str(data)})
    assert server.proc is not None
    # The server's view of its data dir (its own mount), from outside its namespace.
    return server, Path(f"/proc/{server.proc.pid}/root") / str(data).lstrip("/")


def test_a_full_disk_answers_507_keeps_delete_working_and_recovers(small_disk_server) -> None:
    server, disk = small_disk_server
    key = "disk-tenant"
    media = SAMPLE_MP4.read_bytes()

    status, first = server.request("POST", "/api/asset/request-upload", {"name": "a"}, key)
    assert status == 200, first
    assert put(first["url"], media)[0] == 200
    server.advance(10, key)
    status, ready = server.request("GET", f"/api/asset/{first['asset']['id']}", key=key)
    assert ready["status"]["phase"] == "ready"

    status, second = server.request("POST", "/api/asset/request-upload", {"name": "b"}, key)
    assert status == 200
    filler = disk / "filler"
    fill(filler)
    status, body = put(second["url"], media)
    assert status == 507, body
    assert b"insufficient storage" in body
    status, waiting = server.request("GET", f"/api/asset/{second['asset']['id']}", key=key)
    assert (status, waiting["status"]["phase"]) == (200, "uploading")
    assert not list((disk / "partial").glob("*.part"))

    # The disk is still full: deleting an asset must work, and frees its media.
    status, _ = server.request("DELETE", f"/api/asset/{first['asset']['id']}", key=key)
    assert status == 204
    status, _ = server.request("GET", f"/api/asset/{first['asset']['id']}", key=key)
    assert status == 404
    assert not (disk / "media" / first["asset"]["id"]).exists()

    # Space comes back: the same server takes the retried upload.
    os.unlink(filler)
    assert put(second["url"], media)[0] == 200
    server.advance(10, key)
    status, asset = server.request("GET", f"/api/asset/{second['asset']['id']}", key=key)
    assert asset["status"]["phase"] == "ready"
    assert asset["size"] == len(media)
    log = server.stderr()
    assert "Traceback" not in log, log
