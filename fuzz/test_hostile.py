"""Hostile values that no schema generates, sent to every JSON route and list query.

A fixed corpus (deep nesting, 5,000-digit and ≥ 2^63 integers, NaN/Infinity, lone
surrogates, Unicode digits, malformed URLs, non-ASCII tokens), each sent as raw bytes. What
must hold: no 5xx, Studio-shaped errors, nothing logged, and whatever was accepted leaves
the tenant's objects readable (strict JSON), deletable, and never stuck in `waiting`.
Findings are collected and listed together at the end, each with the request and the
server's log line.
"""

from __future__ import annotations

import http.client
from urllib.parse import quote

import pytest

from fuzz.conftest import SENT, Server, log_errors, strict_json, studio_problems

KEY = "fuzz-hostile-tenant"
DEEP = 50_000
BIG = "1" + "0" * 5000

HOSTILE_JSON: list[bytes] = [
    b"[" * DEEP + b"]" * DEEP,
    b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    b'{"name": ' + BIG.encode() + b"}",
    b'{"name": "x", "staticMp4": ' + BIG.encode() + b"}",
    b'{"name": NaN}',
    b'{"name": "x", "creatorId": {"type": "unverified", "value": Infinity}}',
    b'{"name": "x", "storage": {"ipfs": {"spec": {"nftMetadata": {"a": NaN}}}}}',
    b'{"name": "x", "storage": {"ipfs": {"spec": {"nftMetadata": {"a": -Infinity}}}}}',
    b'{"name": "x", "storage": {"ipfs": {"spec": {"nftMetadata": {"n": 9223372036854775808}}}}}',
    b'{"name": "x", "storage": {"ipfs": {"spec": {"nftMetadata": '
    + b'{"a":' * 600
    + b"1"
    + b"}" * 600
    + b"}}}}",
    b'{"name": "\\ud800"}',
    b'{"name": "x\\udfff", "url": "http://127.0.0.1:9/\\ud800"}',
    b'{"name": "x", "url": "http://[::1/", "events": ["asset.created"]}',
    b'{"name": "x", "url": "http://a..b/", "events": ["asset.created"]}',
    b'{"name": "x", "url": "http://.", "events": ["asset.created"]}',
    b'{"name": "x", "url": "http://' + b"a" * 64 + b'.com/", "events": ["asset.created"]}',
    b'{"name": "x", "url": "http://127.0.0.1:99999/", "events": ["asset.created"]}',
    b'{"seconds": NaN}',
    b'{"seconds": 1e400}',
    b'{"seconds": ' + BIG.encode() + b"}",
    b'{"name": "x"',
    b"\xff\xfe\x00",
    b"",
]

LIST_QUERIES: list[str] = [
    "cursor=skip%C2%B2",  # skip²
    "cursor=skip%E2%91%A0",  # skip①
    "cursor=skip%D9%A1%D9%A2",  # skip and two Arabic-Indic digits
    "cursor=skip-1",
    "cursor=skip" + "9" * 5000,
    "limit=%C2%B2",
    "limit=" + "9" * 5000,
    "limit=-1",
    "filters=" + quote('[{"id":"name","value":["a"]}]'),
    "filters=" + quote('[{"id":"name","value":{"a":1}}]'),
    "filters=" + quote('[{"id":"name","value":9223372036854775808}]'),
    "filters=" + quote('[{"id":"createdAt","value":{"gt":9223372036854775808}}]'),
    "filters=" + quote('[{"id":"name","value":"\\ud800"}]'),
    "filters=" + quote("[" * 1200 + "]" * 1200),  # deep, within aiohttp's 8 KiB URL
    "filters=" + quote('[{"id":"name","value":NaN}]'),
    "filters=not-json",
    "order=" + quote("name-\u00e9,%%,-"),
    "phase=%FF",
]

TOKENS = ["é", "\u0661", "x\x7f", "ä" * 300]


def raw_call(
    server: Server,
    method: str,
    path: str,
    body: bytes | None,
    auth: bytes | None = None,
    key: str = KEY,
) -> tuple[int, dict[str, str], bytes]:
    """The request with its body as raw bytes (and, if given, raw Authorization bytes)."""
    SENT["hostile"] += 1
    conn = http.client.HTTPConnection(server.root.removeprefix("http://"), timeout=15)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Authorization", auth if auth is not None else f"Bearer {key}".encode())
        if body is not None:
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


class Findings:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.found: dict[str, str] = {}

    def check(self, what: str, status: int, headers: dict[str, str], raw: bytes) -> None:
        problems = studio_problems(status, headers, raw)
        logged = log_errors(self.server.log.new())
        if logged and not problems:
            problems = ["server logged an error"]
        for problem in problems:
            # One entry per cause; other requests with the same cause are listed under it.
            cause = logged[0].split(" | ")[-1][:160] if logged else ""
            key = f"{problem.split(':')[0]} [{cause}]"
            if key in self.found:
                self.found[key] += f"\n  also: {what[:160]}"
                continue
            lines = [f"{what} -> {status} {raw[:200]!r}", f"  {problem}"]
            lines += ["  server log: " + line for line in logged]
            self.found[key] = "\n".join(lines)

    def report(self) -> None:
        if not self.server.healthy():
            tail = self.server.proc.stderr()[-2000:]
            self.found["unhealthy"] = "server no longer healthy:\n" + tail
        if self.found:
            found = list(self.found.values())
            text = "\n\n".join(found)
            pytest.fail(f"{len(found)} distinct problem(s):\n\n{text}", pytrace=False)


def _short(body: bytes) -> str:
    return repr(body[:80]) + (f"… ({len(body)} bytes)" if len(body) > 80 else "")


def _objects(server: Server, key: str = KEY) -> dict[str, str]:
    made = server.json("POST", "/api/asset/request-upload", key=key, body={"name": "h"})
    hook = server.json(
        "POST",
        "/api/webhook",
        key=key,
        body={"name": "h", "url": "http://127.0.0.1:9/h", "events": ["asset.created"]},
    )
    return {"asset": made["asset"]["id"], "webhook": hook["id"]}


def _follow_up(server: Server, findings: Findings, what: str) -> None:
    """After an accepted body: the tenant's lists still parse, nothing is stuck or stuck
    undeletable."""
    for path in ("/api/asset", "/api/webhook"):
        status, headers, raw = raw_call(server, "GET", path, None)
        findings.check(f"GET {path} (after {what})", status, headers, raw)
        if status != 200:
            continue
        try:
            docs = strict_json(raw)
        except ValueError as exc:
            findings.found.setdefault(
                f"list unparsable {path}", f"GET {path} after {what}\n  {exc}: {raw[:300]!r}"
            )
            continue
        for doc in docs:
            if path == "/api/asset" and doc.get("status", {}).get("phase") == "waiting":
                status, headers, raw = raw_call(
                    server, "POST", "/_emulator/clock/advance", b'{"seconds": 3600}'
                )
                findings.check("POST /_emulator/clock/advance", status, headers, raw)
                status, headers, raw = raw_call(server, "GET", f"{path}/{doc['id']}", None)
                findings.check(f"GET {path}/{doc['id']}", status, headers, raw)
                if status == 200 and strict_json(raw)["status"]["phase"] == "waiting":
                    findings.found.setdefault(
                        f"stuck {what[:60]}", f"{what}\n  asset still waiting after 3600 s"
                    )
            status, headers, raw = raw_call(server, "DELETE", f"{path}/{doc['id']}", None)
            findings.check(f"DELETE {path}/{doc['id']} (after {what})", status, headers, raw)


def test_hostile_json_bodies(server: Server) -> None:
    findings = Findings(server)
    server.log.new()
    for body in HOSTILE_JSON:
        ids = _objects(server)
        routes = [
            ("POST", "/api/asset/request-upload"),
            ("POST", "/api/asset/upload/url"),
            ("PATCH", f"/api/asset/{ids['asset']}"),
            ("POST", "/api/webhook"),
            ("PUT", f"/api/webhook/{ids['webhook']}"),
            ("PATCH", f"/api/webhook/{ids['webhook']}"),
            ("POST", "/_emulator/clock/advance"),
        ]
        for method, path in routes:
            what = f"{method} {path} {_short(body)}"
            status, headers, raw = raw_call(server, method, path, body)
            findings.check(what, status, headers, raw)
            if status < 300 and not path.startswith("/_emulator/"):
                _follow_up(server, findings, what)
    findings.report()


def test_hostile_list_queries(server: Server) -> None:
    findings = Findings(server)
    server.log.new()
    key = KEY + "-lists"  # a tenant of its own: nothing the body probe stored shows here
    ids = _objects(server, key)
    lists = ["/api/asset", "/api/task", "/api/webhook", f"/api/webhook/{ids['webhook']}/log"]
    for path in lists:
        for query in LIST_QUERIES:
            status, headers, raw = raw_call(server, "GET", f"{path}?{query}", None, key=key)
            findings.check(f"GET {path}?{query[:80]}", status, headers, raw)
    findings.report()


def test_hostile_tokens(server: Server) -> None:
    """Non-ASCII bearer keys (raw UTF-8 bytes) and upload tokens (percent-encoded)."""
    findings = Findings(server)
    server.log.new()
    for token in TOKENS:
        auth = b"Bearer " + token.encode()
        status, headers, raw = raw_call(server, "GET", "/api/asset", None, auth=auth)
        findings.check(f"GET /api/asset with Authorization: Bearer {token!r}", status, headers, raw)
        q = quote(token, safe="")
        for method, path in (
            ("PUT", f"/api/asset/upload/direct?token={q}"),
            ("POST", f"/api/asset/upload/tus?token={q}"),
        ):
            status, headers, raw = raw_call(server, method, path, b"x")
            findings.check(f"{method} {path}", status, headers, raw)
    status, headers, raw = raw_call(server, "GET", "/api/asset", None, auth=b"Bearer \xe9\xff")
    findings.check("GET /api/asset with Authorization: Bearer b'\\xe9\\xff'", status, headers, raw)
    findings.report()


def test_json_helpers_agree() -> None:
    """strict_json refuses exactly what JSON.parse refuses among these."""
    assert strict_json(b'{"a": 1}') == {"a": 1}
    for bad in (b"NaN", b'{"a": Infinity}', b"[-Infinity]"):
        with pytest.raises(ValueError):
            strict_json(bad)
