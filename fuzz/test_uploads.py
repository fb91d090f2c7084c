"""A hypothesis fuzzer on the upload paths: request-upload, direct PUT and tus, over raw
sockets so that header bytes, declared lengths and cut-off bodies are exactly as drawn.

Each example is one asset of its own tenant: a request-upload with a drawn body, then a
direct PUT or a tus conversation (POST, PATCH, HEAD, DELETE, OPTIONS in a drawn order,
with drawn Upload-Length / Upload-Offset values, Unicode digits included, Content-Type,
Tus-Resumable, metadata, bodies that stop short of their Content-Length), then the
tenant's manual clock is advanced and the asset read back. What must hold:

- no 5xx; API errors are JSON `{"errors": [str, ...]}`, tus protocol errors plain text;
- the server logs no error;
- an Upload-Offset answered never exceeds the upload's length nor the bytes sent;
- a PATCH that was answered 204 moved the offset by exactly the bytes sent;
- an asset is `ready` only with the size and sha256 of the bytes that completed it,
  and an upload the server called complete never leaves its asset waiting;
- the server answers its health check at the end.

Problems are collected rather than raised, so one run lists every distinct one (each
with the steps that led to it and the server's log line); the test fails at the end if
there was any. Bounded: a fixed number of derandomized examples, each request with a
timeout, no shrinking.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st

from fuzz.conftest import (
    OUTCOMES,
    REQUEST_TIMEOUT,
    SENT,
    Server,
    header,
    log_errors,
    strict_json,
    studio_problems,
)

SAMPLE = (Path(__file__).resolve().parent.parent / "fixtures" / "sample.mp4").read_bytes()
EXAMPLES = int(os.environ.get("FUZZ_UPLOAD_EXAMPLES", "150"))
OCTET = "application/offset+octet-stream"
METADATA = "filename ZmlsZS5tcDQ=,filetype dmlkZW8vbXA0"  # file.mp4, video/mp4
TERMINAL = ("ready", "failed")

SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    # A stall shows as a request timeout (REQUEST_TIMEOUT); no per-example deadline, which
    # would make the run flaky on a loaded machine.
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


# -- raw HTTP ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def short(self) -> str:
        return f"{self.status} {self.body[:100]!r}"


def send(
    server: Server,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    *,
    declared: int | None = None,
) -> Reply | None:
    """One request on its own connection; headers go as UTF-8 bytes, exactly as given.

    `declared` is the Content-Length to announce when it differs from the body (a body
    that stops short: the write side is shut after it). None when the server closed the
    connection without answering.
    """
    host, port = urlsplit(server.root).hostname or "127.0.0.1", urlsplit(server.root).port
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    length = len(body) if declared is None else declared
    if method not in ("GET", "HEAD", "OPTIONS", "DELETE") or body or declared is not None:
        lines.append(f"Content-Length: {length}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    SENT["uploads"] += 1
    with socket.create_connection((host, port), timeout=REQUEST_TIMEOUT) as sock:
        try:
            sock.sendall(head + body)
            if length > len(body):
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before reading everything
        resp = http.client.HTTPResponse(sock, method=method)
        try:
            resp.begin()
            data = resp.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            return None
        return Reply(resp.status, {k: v for k, v in resp.getheaders()}, data)


# -- what an example records ----------------------------------------------------------------

FINDINGS: dict[str, str] = {}


@dataclass
class Trail:
    """The steps of one example, for the report of anything found in it."""

    name: str
    steps: list[str] = field(default_factory=list)

    def step(self, what: str, reply: Reply | None) -> None:
        what = what if len(what) < 300 else what[:300] + "…"
        self.steps.append(f"{what} -> {reply.short() if reply else 'connection closed'}")

    def problem(self, kind: str, detail: str, server: Server) -> None:
        logged = log_errors(server.log.new())
        key = f"{self.name}: {kind}" + (f" [{logged[0]}]" if logged else "")
        if key not in FINDINGS:
            report = [f"{self.name}: {kind}: {detail}", *("  " + s for s in self.steps)]
            report += ["  server log: " + line for line in logged]
            FINDINGS[key] = "\n".join(report)

    def check(self, server: Server, what: str, reply: Reply | None, *, tus: bool) -> None:
        """Record `what` and its answer; note the answer's problems and any logged error."""
        self.step(what, reply)
        logged = log_errors(server.log.new())
        # The exception line names the cause: the same status from two causes is two finds.
        cause = logged[0].split(" | ")[-1][:160] if logged else ""
        problems = []
        if reply is not None:
            head = what.startswith("HEAD")
            problems = studio_problems(reply.status, reply.headers, reply.body, tus=tus, head=head)
        for problem in problems or (["server logged an error"] if logged else []):
            kind = problem.split(":")[0]
            key = f"{self.name}: {what.split(' ')[0]} {kind} [{cause}]"
            if problems and logged:
                key = f"{self.name}: {kind} [{cause}]"
            if not problems:
                key = f"{self.name}: logged [{cause}]"
            if key not in FINDINGS:
                report = [f"{self.name}: {problem}", *("  " + s for s in self.steps)]
                report += ["  server log: " + line for line in logged]
                FINDINGS[key] = "\n".join(report)


def report_findings(server: Server) -> None:
    healthy = server.healthy()
    found = list(FINDINGS.values())
    FINDINGS.clear()
    if not healthy:
        found.append("server no longer healthy:\n" + server.proc.stderr()[-2000:])
    if found:
        pytest.fail(f"{len(found)} distinct problem(s):\n\n" + "\n\n".join(found), pytrace=False)


# -- the asset under test ------------------------------------------------------------------

_TENANTS = iter(range(1_000_000))


@dataclass
class Asset:
    key: str
    id: str
    token: str
    direct_target: str
    tus_target: str


def create_asset(server: Server, trail: Trail, body: Any, raw: bytes | None) -> Asset | None:
    """request-upload with the drawn body (JSON or raw bytes); a valid one when refused."""
    key = f"fuzz-upload-{next(_TENANTS)}"
    auth = [("Authorization", f"Bearer {key}"), ("Content-Type", "application/json")]
    payload = raw if raw is not None else json.dumps(body).encode()
    reply = send(server, "POST", "/api/asset/request-upload", auth, payload)
    trail.check(server, f"POST request-upload {payload[:120]!r}", reply, tus=False)
    if reply is None or reply.status != 200:
        reply = send(server, "POST", "/api/asset/request-upload", auth, b'{"name":"x"}')
        trail.check(server, "POST request-upload {name: x}", reply, tus=False)
        if reply is None or reply.status != 200:
            return None
    try:
        made = strict_json(reply.body)
    except ValueError as exc:
        trail.problem("request-upload answer", str(exc), server)
        return None
    direct, tus = urlsplit(made["url"]), urlsplit(made["tusEndpoint"])
    token = direct.query.removeprefix("token=")
    return Asset(key, made["asset"]["id"], token, f"{direct.path}?{direct.query}", tus.path)


def settle(server: Server, trail: Trail, asset: Asset) -> dict[str, Any] | None:
    """Advance the asset's tenant clock far enough for any processing; the asset after."""
    auth = [("Authorization", f"Bearer {asset.key}"), ("Content-Type", "application/json")]
    for _ in range(3):  # processing plans are a few steps; each advance runs all due ones
        reply = send(server, "POST", "/_emulator/clock/advance", auth, b'{"seconds": 600}')
        trail.check(server, "POST /_emulator/clock/advance 600", reply, tus=False)
    reply = send(server, "GET", f"/api/asset/{asset.id}", auth[:1])
    trail.check(server, "GET asset", reply, tus=False)
    if reply is None or reply.status != 200:
        return None
    doc: dict[str, Any] = strict_json(reply.body)
    return doc


def check_landed(
    server: Server, trail: Trail, doc: dict[str, Any] | None, landed: bytes | None
) -> None:
    """`landed`: the bytes of the upload the server acknowledged as complete, if any."""
    if doc is None:
        return
    phase = doc.get("status", {}).get("phase")
    trail.steps.append(f"asset phase {phase}, size {doc.get('size')}")
    OUTCOMES[f"{trail.name} {phase}{'' if landed is None else ' (landed)'}"] += 1
    if phase == "ready":
        if landed is None:
            trail.problem("ready without a complete upload", f"asset {doc['id']}", server)
            return
        if doc.get("size") != len(landed):
            sizes = f"{doc.get('size')} != {len(landed)}"
            trail.problem("ready with the wrong size", sizes, server)
        sha = {h.get("algorithm"): h.get("hash") for h in doc.get("hash", [])}.get("sha256")
        if sha is not None and sha != hashlib.sha256(landed).hexdigest():
            trail.problem("ready with the wrong sha256", f"asset {doc['id']}", server)
    elif landed is not None and phase not in TERMINAL:
        trail.problem("complete upload left waiting", f"phase {phase} after 1800 s", server)


# -- strategies ----------------------------------------------------------------------------

# Header values: mostly printable ASCII, some non-ASCII (sent as UTF-8), a few control
# characters (which aiohttp's parser refuses). Never CR/LF: that is another request.
HEADER_TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24),
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x3000, blacklist_categories=("Cs", "Cc")),
        max_size=12,
    ),
    st.sampled_from(["\x01", "a\x7fb", "\t", "é", "\u0661", "²"]),
)
ODD_NUMBERS = st.sampled_from(
    [
        "",
        " ",
        "-1",
        "+5",
        "1.0",
        "1e3",
        "0x10",
        "²",
        "1²",
        "①",
        "\u0661\u0662",  # Arabic-Indic 12
        "\u0663\u0662\u0660\u0660\u0660",  # Arabic-Indic 32000
        "\uff19",  # fullwidth 9
        "99999999999999999999999999",
        "1" * 5000,
        " 10",
        "10 ",
        "NaN",
    ]
)
MEDIA = st.one_of(
    st.just(SAMPLE),
    st.sampled_from([SAMPLE[:1], SAMPLE[:1000], SAMPLE[: len(SAMPLE) // 2], SAMPLE[:-1]]),
    st.binary(max_size=3000),
    st.just(b""),
)
REQUEST_BODY = st.one_of(
    st.fixed_dictionaries({"name": st.text(max_size=20)}),
    st.dictionaries(
        st.sampled_from(["name", "staticMp4", "playbackPolicy", "storage", "c2pa", "profiles"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
            max_leaves=8,
        ),
    ),
)
RAW_BODY = st.one_of(
    st.none(),
    st.none(),
    st.sampled_from(
        [
            b'{"name": NaN}',
            b'{"name": "x", "creatorId": Infinity}',
            b'{"name": "x", "staticMp4": 1' + b"0" * 5000 + b"}",
            b'{"name": "\\ud800"}',
            b"[" * 5000 + b"]" * 5000,
            b'{"name": "x"',
            b"\xff\xfe",
            b"",
        ]
    ),
)
BAD_TOKENS = st.one_of(
    st.sampled_from(["", "x", "é", "%C3%A9", "%FF", "a.b.c", "\u0661"]),
    HEADER_TEXT.map(lambda t: quote(t, safe="")),
)


def mangle_token(token: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(token),
        st.just(token),
        st.just(token),
        BAD_TOKENS,
        st.sampled_from([token[:-1], token + "x", token + "%C3%A9", token.upper()]),
    )


EXTRA_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["X-Fuzz", "Content-Encoding", "Expect", "Content-Range", "Range"]),
        HEADER_TEXT,
    ),
    max_size=2,
)
CONTENT_TYPES = st.one_of(
    st.none(),
    st.sampled_from(["video/mp4", "application/octet-stream", OCTET, "text/plain", ""]),
    HEADER_TEXT,
)


# -- direct PUT ----------------------------------------------------------------------------


@st.composite
def direct_plan(draw: st.DrawFn) -> dict[str, Any]:
    media = draw(MEDIA)
    return {
        "request": draw(REQUEST_BODY),
        "raw_request": draw(RAW_BODY),
        "media": media,
        "content_type": draw(CONTENT_TYPES),
        "extra": draw(EXTRA_HEADERS),
        # How many of the body's bytes to send before stopping short (None: all of them).
        "cut": draw(st.none() | st.none() | st.integers(0, max(len(media) - 1, 0))),
        "token": draw(st.integers(0, 5)),  # 0..2 keep it, 3.. mangle it
        "retry": draw(st.booleans()),
    }


@SETTINGS
@hypothesis.given(plan=direct_plan(), mangled=BAD_TOKENS)
def probe_direct_put(server: Server, plan: dict[str, Any], mangled: str) -> None:
    trail = Trail("direct PUT")
    asset = create_asset(server, trail, plan["request"], plan["raw_request"])
    if asset is None:
        return
    target = asset.direct_target
    if plan["token"] >= 3:
        target = f"/api/asset/upload/direct?token={mangled}"
    headers = list(plan["extra"])
    if plan["content_type"] is not None:
        headers.append(("Content-Type", plan["content_type"]))
    media, cut = plan["media"], plan["cut"]
    landed: bytes | None = None
    if cut is not None and cut < len(media):
        reply = send(server, "PUT", target, headers, media[:cut], declared=len(media))
        trail.check(server, f"PUT {target[:60]} {cut} of {len(media)} bytes", reply, tus=False)
    else:
        reply = send(server, "PUT", target, headers, media)
        trail.check(server, f"PUT {target[:60]} {len(media)} bytes", reply, tus=False)
        if reply is not None and reply.status == 200:
            landed = media
    if plan["retry"]:  # a client retrying with the whole sample: lands only if nothing did
        reply = send(server, "PUT", asset.direct_target, [], SAMPLE)
        trail.check(server, f"PUT (retry) {len(SAMPLE)} bytes", reply, tus=False)
        if reply is not None and reply.status == 200:
            if landed is not None:
                trail.problem("second PUT accepted", "a second upload landed on one asset", server)
            landed = SAMPLE
    check_landed(server, trail, settle(server, trail, asset), landed)


# -- tus -----------------------------------------------------------------------------------


@st.composite
def tus_plan(draw: st.DrawFn) -> dict[str, Any]:
    media = draw(MEDIA)
    step = st.one_of(
        st.tuples(
            st.just("patch"),
            st.integers(0, 9),  # offset: 0..6 the right one, 7 a wrong one, 8..9 odd text
            ODD_NUMBERS,
            st.integers(0, 6),  # content type: 0..4 the right one
            CONTENT_TYPES,
            st.integers(0, max(len(media), 1)),  # chunk size
            st.integers(0, 5),  # 0 stop short, 1 odd Upload-Length, else plain
            st.integers(0, 3),  # Tus-Resumable: 0 a wrong one
        ),
        st.tuples(st.just("head"), st.integers(0, 3)),
        st.tuples(st.just("delete"), st.integers(0, 3)),
        st.tuples(st.just("options"), st.integers(0, 3)),
        st.tuples(st.just("put"), st.integers(0, 3)),
    )
    return {
        "media": media,
        "length": draw(st.integers(0, 4)),  # 0..2 right, 3 odd text, 4 deferred
        "odd_length": draw(ODD_NUMBERS),
        "resumable": draw(st.one_of(st.just("1.0.0"), st.just("1.0.0"), HEADER_TEXT)),
        "metadata": draw(st.one_of(st.none(), st.just(METADATA), HEADER_TEXT)),
        "with_upload": draw(st.integers(0, 3)),  # 0: the first chunk in the POST
        "first_chunk": draw(st.integers(0, max(len(media), 1))),
        "content_type": draw(CONTENT_TYPES),
        "extra": draw(EXTRA_HEADERS),
        "steps": draw(st.lists(step, max_size=8)),
    }


@dataclass
class TusState:
    """What the client knows: the upload's URL path, its length, the offset last told."""

    path: str | None = None
    length: int | None = None
    offset: int = 0
    sent: int = 0  # bytes sent since creation (an upper bound on any offset)
    complete: bool = False
    gone: bool = False
    direct: bool = False  # a direct PUT of SAMPLE landed on the same asset


def _offset_of(reply: Reply | None) -> int | None:
    value = header(reply.headers, "Upload-Offset") if reply else ""
    return int(value) if value.isascii() and value.isdigit() else None


def _check_offset(
    server: Server, trail: Trail, state: TusState, reply: Reply | None, media: bytes
) -> None:
    offset = _offset_of(reply)
    if reply is None or not 200 <= reply.status < 300 or offset is None:
        return
    length = header(reply.headers, "Upload-Length")
    limit = int(length) if length.isascii() and length.isdigit() else state.length
    if limit is not None and offset > limit:
        trail.problem("offset past the length", f"Upload-Offset {offset} > {limit}", server)
    if offset > state.sent:
        trail.problem("offset past the bytes sent", f"{offset} > {state.sent} sent", server)
    state.offset = offset
    if state.length is not None and offset == state.length:
        state.complete = True


@SETTINGS
@hypothesis.given(plan=tus_plan())
def probe_tus(server: Server, plan: dict[str, Any]) -> None:
    trail = Trail("tus")
    asset = create_asset(server, trail, {"name": "tus"}, None)
    if asset is None:
        return
    media: bytes = plan["media"]
    state = TusState()
    base = [("Tus-Resumable", plan["resumable"]), *plan["extra"]]
    create = list(base)
    if plan["length"] <= 2:
        create.append(("Upload-Length", str(len(media))))
        state.length = len(media)
    elif plan["length"] == 3:
        create.append(("Upload-Length", plan["odd_length"]))
    else:
        create.append(("Upload-Defer-Length", "1"))
    if plan["metadata"] is not None:
        create.append(("Upload-Metadata", plan["metadata"]))
    body = b""
    if plan["with_upload"] == 0:
        body = media[: plan["first_chunk"]]
        create.append(("Content-Type", OCTET))
    elif plan["content_type"] is not None:
        create.append(("Content-Type", plan["content_type"]))
    reply = send(server, "POST", f"{asset.tus_target}?token={asset.token}", create, body)
    trail.check(server, f"POST tus {create} +{len(body)} bytes", reply, tus=True)
    if reply is None or reply.status != 201:
        state.gone = True
    else:
        state.path = urlsplit(header(reply.headers, "Location")).path
        state.sent = len(body)
        _check_offset(server, trail, state, reply, media)
    if state.gone:
        # Still try the steps on the id Studio would have given: they must fail cleanly.
        state.path = "/api/asset/upload/tus/directUpload%2Fnothing-here"
    for drawn in plan["steps"]:
        tus_step(server, trail, asset, state, base, media, drawn)
    landed = media if state.complete and state.length == len(media) else None
    if state.direct:
        landed = SAMPLE if landed is None else landed
    check_landed(server, trail, settle(server, trail, asset), landed)


def tus_step(
    server: Server,
    trail: Trail,
    asset: Asset,
    state: TusState,
    base: list[tuple[str, str]],
    media: bytes,
    drawn: tuple[Any, ...],
) -> None:
    assert state.path is not None
    kind, resumable = drawn[0], drawn[-1]
    headers = [h for h in base if h[0] != "Tus-Resumable"]
    headers.append(("Tus-Resumable", "0.2.2" if resumable == 0 else "1.0.0"))
    if kind == "head":
        reply = send(server, "HEAD", state.path, headers)
        trail.check(server, f"HEAD {state.path}", reply, tus=True)
        _check_offset(server, trail, state, reply, media)
        return
    if kind == "options":
        reply = send(server, "OPTIONS", state.path, headers)
        trail.check(server, f"OPTIONS {state.path}", reply, tus=True)
        return
    if kind == "delete":
        reply = send(server, "DELETE", state.path, headers)
        trail.check(server, f"DELETE {state.path}", reply, tus=True)
        if reply is not None and reply.status == 204:
            state.complete, state.gone, state.offset = False, True, 0
        return
    if kind == "put":  # the other upload path on the same asset
        reply = send(server, "PUT", asset.direct_target, [], SAMPLE)
        trail.check(server, "PUT direct (during tus)", reply, tus=False)
        if reply is not None and reply.status == 200:
            if state.offset or state.complete or state.direct:
                trail.problem("direct PUT accepted during tus", "two uploads on one asset", server)
            state.direct = True
        return
    _, offset_choice, odd, ctype_choice, ctype, size, shape, _ = drawn
    if offset_choice <= 6:
        offset = str(state.offset)
    elif offset_choice == 7:
        offset = str(state.offset + 1)
    else:
        offset = odd
    headers.append(("Upload-Offset", offset))
    if ctype_choice <= 4:
        headers.append(("Content-Type", OCTET))
    elif ctype is not None:
        headers.append(("Content-Type", ctype))
    if shape == 1:
        headers.append(("Upload-Length", odd))
    elif state.length is None and shape == 2:
        headers.append(("Upload-Length", str(len(media))))
    chunk = media[state.offset : state.offset + size]
    if shape == 0 and chunk:  # stop short: half the chunk, then the client is gone
        sent = chunk[: len(chunk) // 2]
        reply = send(server, "PATCH", state.path, headers, sent, declared=len(chunk))
        what = f"PATCH {headers} {len(sent)} of {len(chunk)} bytes"
    else:
        sent = chunk
        reply = send(server, "PATCH", state.path, headers, sent)
        what = f"PATCH {headers} {len(sent)} bytes"
    state.sent = max(state.sent, state.offset + len(sent))
    trail.check(server, what, reply, tus=True)
    if reply is not None and reply.status == 204:
        if state.direct and sent:
            trail.problem("tus PATCH after a direct PUT", "two uploads on one asset", server)
        if ("Upload-Length", str(len(media))) in headers:
            state.length = len(media)
        expected = state.offset + len(sent)
        got = _offset_of(reply)
        if shape != 0 and got is not None and got != expected and offset == str(state.offset):
            trail.problem("PATCH offset", f"answered {got}, expected {expected}", server)
    _check_offset(server, trail, state, reply, media)
    if shape == 0:  # where did the cut-off PATCH leave it? Ask, as a tus client would
        reply = send(server, "HEAD", state.path, [("Tus-Resumable", "1.0.0")])
        trail.check(server, f"HEAD {state.path}", reply, tus=True)
        _check_offset(server, trail, state, reply, media)


# -- the tests -----------------------------------------------------------------------------


def test_direct_put(server: Server) -> None:
    probe_direct_put(server)
    report_findings(server)


def test_tus(server: Server) -> None:
    probe_tus(server)
    report_findings(server)
