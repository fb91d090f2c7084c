"""Start time: `serve` answers without importing the heavy third-party modules, which the
features that need them import on first use (issue 16; bench/startup.py measures it).

Each test runs the real `serve` command (emulator.cli.main) in a fresh interpreter, asks it
over HTTP, stops it with SIGTERM and reads the names in its sys.modules, printed on exit.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.serving import STARTUP_LINE

pytestmark = pytest.mark.e2e

# Each costs start time and serves only some requests: PyJWT and cryptography (playback
# JWTs, signing keys, seeds with keys), multiformats (IPFS export), ffmpeg-python (encoder
# commands), PyYAML (scenario and seed files), and the seeding module (--seed). Lighter,
# but ~1 ms each: decimal (String() of a fractional number in a list filter) and
# importlib.resources (the dashboard's files).
HEAVY = (
    "jwt",
    "cryptography",
    "multiformats",
    "ffmpeg",
    "yaml",
    "emulator.seeding",
    "decimal",
    "importlib.resources",
)

CHILD = """
import json, sys
from emulator.cli import main
code = main(sys.argv[1:])
print("MODULES " + json.dumps(sorted(sys.modules)), flush=True)
sys.exit(code)
"""


class Served:
    """`serve` in a fresh interpreter that prints its loaded modules when it stops."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        argv = [sys.executable, "-c", CHILD, "serve", "--port", "0", "--data-dir", str(data_dir)]
        self.proc = subprocess.Popen(
            [*argv, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 20.0)
        line = self.proc.stdout.readline() if ready else ""
        match = STARTUP_LINE.search(line)
        if not match:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"serve did not start: {line!r}\n{err}")
        self.root = match.group(1)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.root + path, data=data, method=method)
        req.add_header("Authorization", "Bearer startup-test")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> set[str]:
        """SIGTERM; the names of the modules it had loaded, and their top-level names."""
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        assert self.proc.returncode == 0, err
        lines = [x for x in out.splitlines() if x.startswith("MODULES ")]
        assert lines, out
        names: list[str] = json.loads(lines[-1].removeprefix("MODULES "))
        return {n.split(".")[0] for n in names} | set(names)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Any:
    started: list[Served] = []

    def start(*args: str) -> Served:
        started.append(Served(tmp_path / f"data{len(started)}", *args))
        return started[-1]

    yield start
    for server in started:
        server.kill()


def test_serve_answers_without_the_heavy_modules(served: Any) -> None:
    server = served()
    assert server.request("GET", "/_emulator/health") == (200, {"status": "ok"})
    status, body = server.request("GET", "/api/asset")
    assert (status, body) == (200, [])
    status, body = server.request("POST", "/api/asset/request-upload", {"name": "a.mp4"})
    assert status == 200, body
    loaded = server.stop()
    assert [m for m in HEAVY if m in loaded] == []
    # The check sees what the server imported: its own modules are there.
    assert {"aiohttp", "emulator.app", "emulator.access", "emulator.exports"} <= loaded


def test_features_import_what_they_need_on_first_use(served: Any) -> None:
    # A shipped scenario is a YAML file; a signing key is made with cryptography.
    server = served("--scenario", "instant")
    status, key = server.request("POST", "/api/access-control/signing-key", {"name": "k"})
    assert status == 201, key
    assert key["publicKey"] and key["privateKey"]
    status, keys = server.request("GET", "/api/access-control/signing-key")
    assert (status, [k["id"] for k in keys]) == (200, [key["id"]])
    loaded = server.stop()
    assert {"yaml", "cryptography"} <= loaded
    # Neither seeds, playback JWTs, IPFS nor encoding was asked for.
    assert [m for m in ("emulator.seeding", "jwt", "multiformats", "ffmpeg") if m in loaded] == []
