"""Start and stop a real `livepeer-emulator serve` subprocess, as users run it."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

STARTUP_LINE = re.compile(r"API at (http://\S+)/api ")


def emulator_command() -> list[str]:
    script = Path(sys.executable).parent / "livepeer-emulator"
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator"]


class ServerProcess:
    """One `serve` subprocess on a free port, with its data dir and captured output."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = data_dir.parent / f"{data_dir.name}-stderr.log"
        self.startup_line = ""
        self.root = ""

    @property
    def api_url(self) -> str:
        return self.root + "/api"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        stderr = self.stderr_path.open("a")
        self.proc = subprocess.Popen(
            [
                *emulator_command(),
                "serve",
                "--port",
                "0",
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self.env,
        )
        stderr.close()
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        match = STARTUP_LINE.search(line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.stderr()}")
        self.startup_line = line.strip()
        self.root = match.group(1)
        status, body = self.request("GET", "/_emulator/health")
        assert (status, body) == (200, {"status": "ok"}), (status, body)
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Plain HTTP, as curl would do it; returns (status, decoded JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.root + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        return status, (json.loads(raw) if raw else None)

    def advance(self, seconds: float, key: str | None = None) -> dict[str, Any]:
        status, body = self.request("POST", "/_emulator/clock/advance", {"seconds": seconds}, key)
        assert status == 200, body
        return dict(body)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Signal the server; returns (exit code, seconds it took to exit)."""
        assert self.proc is not None
        began = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return code, time.monotonic() - began
