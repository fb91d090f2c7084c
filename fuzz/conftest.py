"""What both fuzz probes share: a loopback-only network, one real `serve` subprocess on the
manual clock, its log, and the invariants every answer must keep.

The probes send generated URLs (URL imports, webhook targets) that the server would fetch
or post to. So that nothing ever leaves this machine, the pytest process moves into a
network namespace of its own that has only loopback (Linux, root or user namespaces); the
server it starts inherits it. Where that is impossible the probes rewrite every generated
URL's host to 127.0.0.1 instead (`SANDBOX.isolated` is False), and say so in the header.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import socket
import struct
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.serving import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
# Never copied into the repo: in CI a copy of shared/ sits beside the clone.
SCHEMA_PATH = ROOT.parent / "shared" / "reference" / "livepeer-studio-api-schema.yaml"
REQUEST_TIMEOUT = 15.0  # seconds; every probe request is bounded


@dataclass
class Sandbox:
    isolated: bool = False
    reason: str = "not tried"


SANDBOX = Sandbox()
# Requests each probe sent, and how its examples ended, for the closing summary.
SENT: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


def _enter_loopback_only_network() -> None:
    """unshare(CLONE_NEWNET), then bring `lo` up: the new namespace has nothing else."""
    if not sys.platform.startswith("linux"):
        SANDBOX.reason = "not Linux"
        return
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newnet, clone_newuser = 0x40000000, 0x10000000
    if libc.unshare(clone_newnet) != 0:
        # Without CAP_SYS_ADMIN a user namespace may still grant it (single-threaded only).
        first = ctypes.get_errno()
        if libc.unshare(clone_newnet | clone_newuser) != 0:
            SANDBOX.reason = f"unshare: {os.strerror(first)}"
            return
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            ifreq = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, ifreq))[1]
            fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    except OSError as exc:
        # A namespace without a working loopback is useless; nothing can recover it here.
        pytest.exit(f"fuzz: new network namespace, but lo stays down: {exc}", returncode=3)
    SANDBOX.isolated, SANDBOX.reason = True, "own network namespace, loopback only"


def pytest_configure(config: pytest.Config) -> None:
    if not SANDBOX.isolated and SANDBOX.reason == "not tried":
        _enter_loopback_only_network()


def pytest_report_header(config: pytest.Config) -> str:
    mode = "isolated" if SANDBOX.isolated else "URL hosts rewritten to 127.0.0.1"
    return f"fuzz network: {mode} ({SANDBOX.reason})"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SENT:
        sent = ", ".join(f"{name}: {count}" for name, count in sorted(SENT.items()))
        terminalreporter.write_line(f"fuzz requests sent: {sent}")
    if OUTCOMES:
        ends = ", ".join(f"{name}: {count}" for name, count in sorted(OUTCOMES.items()))
        terminalreporter.write_line(f"fuzz upload examples ended: {ends}")


def loopback_url(value: str) -> str:
    """Outside the sandbox: the same URL aimed at a closed loopback port, kept if unparsable
    only when it has no host a client could reach."""
    if SANDBOX.isolated:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return "http://127.0.0.1:9/unparsable"
    if not parts.netloc and not parts.path.startswith("//"):
        return value
    return urlunsplit((parts.scheme or "http", "127.0.0.1:9", parts.path, parts.query, ""))


def confine_urls(body: Any) -> Any:
    """Every string under a `url` key (and nested ones) through loopback_url."""
    if isinstance(body, dict):
        return {
            k: loopback_url(v) if k == "url" and isinstance(v, str) else confine_urls(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [confine_urls(v) for v in body]
    return body


# -- the server ----------------------------------------------------------------------------


class ServerLog:
    """The server's stderr, read from where the last look stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open("rb") as file:
            file.seek(self.offset)
            data = file.read()
        self.offset += len(data)
        return data.decode(errors="replace")


# What aiohttp answers, in plain text, to bytes that are not a valid HTTP request (its
# parser: 400) or to an Expect header it does not know (417), before any route runs.
HTTP_REFUSALS = (
    b"Invalid ",
    b"Bad ",
    b"Unexpected ",
    b"Data after",
    b"Missing ",
    b"Duplicate ",
    b"Unknown Expect",
)
ERROR_LINE = re.compile(r"^(ERROR|CRITICAL) .*$", re.M)


def log_errors(text: str) -> list[str]:
    """Each logged error as 'ERROR …: message | File …, line N, in f | Exception: text'."""
    found: list[str] = []
    for block in re.split(r"(?m)^(?=(?:ERROR|CRITICAL|WARNING|INFO|DEBUG) )", text):
        lines = block.rstrip().splitlines()
        if not lines or not ERROR_LINE.match(lines[0]):
            continue
        summary = [lines[0]]
        frames = [i for i, ln in enumerate(lines) if ln.strip().startswith('File "')]
        if frames:
            summary.append(lines[frames[-1]].strip())
            # The exception: the first unindented line after the last frame, and the
            # first line of its message when that continues below (aiohttp's do).
            rest = [ln for ln in lines[frames[-1] + 1 :] if ln and not ln.startswith(" ")]
            if rest:
                after = lines[lines.index(rest[0]) + 1 :]
                more = next((ln.strip() for ln in after if ln.strip()), "")
                summary.append(rest[0].strip() + (" " + more if more else ""))
        found.append(" | ".join(summary))
    return found


@dataclass
class Server:
    proc: ServerProcess
    log: ServerLog
    root: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.root + "/api"

    def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """Plain HTTP to the server; (status, headers, raw body); never raises on 4xx/5xx."""
        if json_body is not None:
            data = json.dumps(json_body).encode()
        req = urllib.request.Request(self.root + path, data=data, method=method)
        if json_body is not None:
            req.add_header("Content-Type", "application/json")
        if key is not None:
            req.add_header("Authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def json(self, method: str, path: str, *, key: str, body: Any = None) -> Any:
        status, _, raw = self.call(method, path, key=key, json_body=body)
        assert 200 <= status < 300, (method, path, status, raw[:500])
        return json.loads(raw) if raw else None

    def healthy(self) -> bool:
        if self.proc.proc is None or self.proc.proc.poll() is not None:
            return False
        try:
            status, _, raw = self.call("GET", "/_emulator/health")
        except OSError:
            return False
        return status == 200 and json.loads(raw) == {"status": "ok"}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `livepeer-emulator serve --clock manual` on 127.0.0.1, fresh data dir."""
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    proc = ServerProcess(data_dir, "--host", "127.0.0.1", "--clock", "manual").start()
    srv = Server(proc=proc, log=ServerLog(proc.stderr_path), root=proc.root)
    srv.log.skip()
    yield srv
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


# -- the invariants ------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"bare {name} in JSON (JSON.parse rejects it)")


def strict_json(raw: bytes) -> Any:
    """json.loads that refuses NaN/Infinity, as JavaScript's JSON.parse does."""
    return json.loads(raw, parse_constant=_no_constant)


def header(headers: Mapping[str, Any], name: str) -> str:
    """One header's value from a plain or a multi-valued (schemathesis) mapping."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return ""


def studio_problems(
    status: int, headers: Mapping[str, Any], raw: bytes, *, tus: bool = False, head: bool = False
) -> list[str]:
    """What is wrong with one answer, by the rules every Studio answer keeps (`head`: the
    answer to a HEAD, which has no body)."""
    problems: list[str] = []
    ctype = header(headers, "Content-Type")
    if status >= 500:
        problems.append(f"server error {status}")
    if status >= 400:
        refused = status in (400, 417) and raw.startswith(HTTP_REFUSALS)
        if refused and ctype.startswith("text/plain"):
            return problems  # aiohttp refused the bytes as HTTP before any route ran
        if tus and not ctype.startswith("application/json"):
            # tus protocol refusals are plain text, as @tus/server sends them
            if not raw.strip() and not head:
                problems.append(f"{status} tus error with an empty body")
            return problems
        if not ctype.startswith("application/json"):
            problems.append(f"{status} error is {ctype or 'no content type'}, not JSON")
            return problems
        try:
            body = strict_json(raw)
        except ValueError as exc:
            return [*problems, f"{status} error body is not valid JSON: {exc}"]
        if not (
            isinstance(body, dict)
            and list(body) == ["errors"]
            and isinstance(body["errors"], list)
            and body["errors"]
            and all(isinstance(e, str) for e in body["errors"])
        ):
            problems.append(f'{status} error body is not {{"errors": [str, ...]}}: {raw[:300]!r}')
    elif 200 <= status < 300 and raw and ctype.startswith("application/json"):
        try:
            strict_json(raw)
        except ValueError as exc:
            problems.append(f"{status} body is not valid JSON: {exc}")
    return problems
