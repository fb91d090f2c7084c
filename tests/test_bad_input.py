"""Hostile or malformed input answers a 4xx `{"errors": [...]}` and stores nothing.

Each case here once answered 5xx (or worse, stored something that then broke every later
call): deep JSON, huge numbers, NaN, Unicode digits, bad filter values, unparseable
webhook URLs, non-ASCII upload tokens, deep or self-referencing YAML, bad header bytes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.routes.tus import TUS
from emulator.store.assets import Changes
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, path_of, upload

JSON_ROUTES = [
    ("POST", "/api/asset/request-upload"),
    ("POST", "/api/asset/upload/url"),
    ("POST", "/api/webhook"),
    ("PUT", "/api/webhook/some-id"),
    ("PATCH", "/api/webhook/some-id"),
    ("PATCH", "/api/asset/some-id"),
    ("POST", "/_emulator/reset"),
    ("POST", "/_emulator/clock/advance"),
    ("POST", "/_emulator/webhooks/trigger"),
]
LIST_ROUTES = ["/api/asset", "/api/task", "/api/webhook", "/api/webhook/some-id/log"]
NUMBER_OR_RANGE = '{"gt"|"gte"|"lt"|"lte": number}'  # what createdAt takes


@pytest.fixture
def auth(key: str) -> dict[str, str]:
    """The bodies here are sent as text; Studio parses them only when labelled JSON."""
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def _strict_json(text: str) -> Any:
    """JSON.parse's reading: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


async def _errors(resp: Any) -> tuple[int, list[str]]:
    text = await resp.text()
    assert resp.headers["Content-Type"].startswith("application/json"), text
    body = _strict_json(text)
    assert isinstance(body, dict) and list(body) == ["errors"], body
    assert all(isinstance(m, str) and m for m in body["errors"]), body
    return resp.status, body["errors"]


async def _nothing_stored(client: TestClient, auth: dict[str, str]) -> None:
    """The tenant still has no assets, tasks or webhooks, and the server still answers."""
    for path in ("/api/asset", "/api/task", "/api/webhook"):
        resp = await client.get(path, headers=auth)
        assert resp.status == 200, await resp.text()
        assert _strict_json(await resp.text()) == []


def _deep(depth: int, opener: str = "[", closer: str = "]", inner: str = "1") -> str:
    return opener * depth + inner + closer * depth


def _deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


# -- JSON bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
async def test_json_nested_50000_deep_is_refused(
    client: TestClient, auth: dict[str, str], method: str, path: str
) -> None:
    body = '{"name":' + _deep(50_000) + "}"
    resp = await client.request(method, path, data=body, headers=auth)
    status, errors = await _errors(resp)
    assert status in (400, 422), errors
    assert "nested" in errors[0] and "deep" in errors[0], errors
    await _nothing_stored(client, auth)


async def test_a_body_nested_past_the_cap_is_422_and_just_under_is_fine(
    client: TestClient, auth: dict[str, str]
) -> None:
    def with_metadata(depth: int) -> str:
        return (
            '{"name":"n","storage":{"ipfs":{"spec":{"nftMetadata":' + _deep_object(depth) + "}}}}"
        )

    # ~600 levels, ~3.6 kB: once stored the asset, then answered 500.
    resp = await client.post("/api/asset/request-upload", data=with_metadata(600), headers=auth)
    status, errors = await _errors(resp)
    assert status == 422
    assert errors == ["JSON is nested too deeply: more than 100 levels of arrays and objects"]
    # The body and storage, ipfs and spec take four levels: 96 more make 100, 97 are too many.
    resp = await client.post("/api/asset/request-upload", data=with_metadata(97), headers=auth)
    assert (await _errors(resp))[0] == 422
    await _nothing_stored(client, auth)
    ok = await client.post("/api/asset/request-upload", data=with_metadata(96), headers=auth)
    assert ok.status == 200, await ok.text()
    asset_id = (await ok.json())["asset"]["id"]
    got = await client.get(f"/api/asset/{asset_id}", headers=auth)
    assert got.status == 200


@pytest.mark.parametrize(
    "path",
    ["/api/asset/request-upload", "/api/asset/upload/url"],
)
async def test_deep_nft_metadata_stores_nothing(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    body = {
        "name": "deep",
        "url": "https://example.com/v.mp4",
        "storage": {"ipfs": {"spec": {"nftMetadata": "PLACEHOLDER"}}},
    }
    if path.endswith("request-upload"):
        del body["url"]
    text = json.dumps(body).replace('"PLACEHOLDER"', _deep_object(600))
    resp = await client.post(path, data=text, headers=auth)
    status, _ = await _errors(resp)
    assert status == 422
    await _nothing_stored(client, auth)


async def test_deep_patch_leaves_the_asset_working(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 10)
    asset_id = created["asset"]["id"]
    patch = '{"storage":{"ipfs":{"spec":{"nftMetadata":' + _deep_object(600) + "}}}}"
    resp = await client.patch(f"/api/asset/{asset_id}", data=patch, headers=auth)
    assert await _errors(resp) == (
        422,
        ["JSON is nested too deeply: more than 100 levels of arrays and objects"],
    )
    got = await client.get(f"/api/asset/{asset_id}", headers=auth)
    assert got.status == 200
    assert (await got.json())["status"]["phase"] == "ready"
    assert "storage" not in await got.json()
    resp = await client.patch(f"/api/asset/{asset_id}", json={"name": "renamed"}, headers=auth)
    assert resp.status == 200, await resp.text()
    deleted = await client.delete(f"/api/asset/{asset_id}", headers=auth)
    assert deleted.status == 204, await deleted.text()


async def test_an_asset_stored_deep_before_the_cap_can_still_be_deleted(
    client: TestClient, auth: dict[str, str]
) -> None:
    """A data dir from an older version may hold such a document: it must stay deletable."""
    created = await create_upload(client, auth)
    asset_id = created["asset"]["id"]
    store = client.app[TUS].store  # the store, as the tus part holds it
    row = await store.get_asset(asset_id)
    assert row is not None
    deep: Any = 1
    for _ in range(600):
        deep = {"a": deep}
    row.doc["storage"] = {"ipfs": {"spec": {"nftMetadata": deep}}}
    # What an older version could have written; no API path can write it any more.
    await store.save(Changes(assets=[row]))
    listed = await client.get("/api/asset", headers=auth)
    assert listed.status == 200, await listed.text()
    trigger = {"event": "asset.updated", "asset": asset_id}
    resp = await client.post("/_emulator/webhooks/trigger", json=trigger, headers=auth)
    assert resp.status == 200, await resp.text()
    resp = await client.patch(f"/api/asset/{asset_id}", json={"name": "n"}, headers=auth)
    assert resp.status < 500, await resp.text()
    deleted = await client.delete(f"/api/asset/{asset_id}", headers=auth)
    assert deleted.status == 204, await deleted.text()
    assert await (await client.get("/api/asset", headers=auth)).json() == []


async def test_a_5000_digit_integer_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    big = "1" + "0" * 4999
    for method, path in JSON_ROUTES:
        resp = await client.request(method, path, data='{"name":' + big + "}", headers=auth)
        status, errors = await _errors(resp)
        assert status == 400, (path, errors)
        assert "number" in errors[0], errors
    resp = await client.post(
        "/api/asset/request-upload", data='{"name":"x","targetSegmentSizeSecs":1e999}', headers=auth
    )
    assert (await _errors(resp))[0] == 400
    await _nothing_stored(client, auth)


@pytest.mark.parametrize(
    ("constant", "message"),
    [
        ("NaN", "Unexpected token N in JSON at position 38"),
        ("Infinity", "Unexpected token I in JSON at position 38"),
        ("-Infinity", "Unexpected token I in JSON at position 39"),
    ],
)
async def test_nan_and_infinity_are_not_json(
    client: TestClient, auth: dict[str, str], constant: str, message: str
) -> None:
    body = '{"name":"NaN","targetSegmentSizeSecs":' + constant + "}"
    resp = await client.post("/api/asset/request-upload", data=body, headers=auth)
    assert await _errors(resp) == (400, [message])
    await _nothing_stored(client, auth)


def test_the_servers_own_json_never_holds_nan() -> None:
    from emulator.wire import dumps

    with pytest.raises(ValueError):
        dumps({"x": float("nan")})
    with pytest.raises(ValueError):
        dumps([float("inf")])


def test_non_finite_ffprobe_numbers_are_left_out() -> None:
    """ffprobe can print "nan" or "inf" for a crafted file; JSON has no such numbers."""
    from emulator.media import to_probe_result
    from emulator.wire import dumps

    result = to_probe_result(
        {
            "format": {"format_name": "mov,mp4", "duration": "nan", "bit_rate": "inf"},
            "streams": [
                {"codec_type": "video", "duration": "inf", "width": "nan", "height": "360"},
                {"codec_type": "audio", "duration": "1.5", "channels": "-inf"},
            ],
        }
    )
    assert result.video_spec is not None
    assert result.video_spec["tracks"][0] == {"type": "video", "codec": "unknown", "height": 360}
    assert result.video_spec["duration"] == 1.5
    dumps(result.video_spec)  # no ValueError: nothing non-finite is left


# -- list queries ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_unicode_digits_in_cursor_and_limit(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    # A cursor without "skip" is an id: the rows after it (none after "garbage").
    garbage = await client.get(path, params={"cursor": "garbage"}, headers=auth)
    assert garbage.status == 200
    # Studio's table.ts find puts the rest of a skip cursor into `OFFSET`, which Postgres
    # refuses unless it is a bigint: its error handler's 500. The emulator answers 400
    # saying what is wrong, as bad input never gets a 500 here.
    for cursor in ("skip²", "skip①", "skip\u0661\u0662"):
        resp = await client.get(path, params={"cursor": cursor}, headers=auth)
        assert await _errors(resp) == (
            400,
            [f'invalid cursor "{cursor}": not a whole number of rows to skip'],
        ), cursor
    resp = await client.get(path, params={"cursor": "skip" + "9" * 5000}, headers=auth)
    assert await _errors(resp) == (
        400,
        [f'invalid cursor "skip{"9" * 36}…": more rows to skip than a bigint holds'],
    )
    for limit in ("²", "\u0661\u0662", "9" * 5000, "-3", "1_0"):
        resp = await client.get(path, params={"limit": limit}, headers=auth)
        assert resp.status == 200, (limit[:10], await resp.text())


async def test_cursor_and_limit_read_only_ascii_digits(
    client: TestClient, auth: dict[str, str]
) -> None:
    for i in range(3):
        await create_upload(client, auth, name=f"a{i}")
    resp = await client.get("/api/asset", params={"limit": "\u0661"}, headers=auth)
    assert len(await resp.json()) == 3  # Arabic-Indic 1 is not 1: the default limit applies
    resp = await client.get("/api/asset", params={"limit": "1"}, headers=auth)
    assert len(await resp.json()) == 1
    resp = await client.get("/api/asset", params={"cursor": "skip\u0662"}, headers=auth)
    assert resp.status == 400  # Postgres reads no Arabic-Indic 2 as OFFSET (Studio: 500)
    resp = await client.get("/api/asset", params={"cursor": "skip2"}, headers=auth)
    assert len(await resp.json()) == 1


@pytest.mark.parametrize("path", ["/api/asset", "/api/task", "/api/webhook"])
@pytest.mark.parametrize(
    ("filters", "status"),
    [
        # Postgres refuses the jsonb parameter (helpers.ts parseFilters: `data->'createdAt'
        # = ${value}`): node-postgres sends an array as '{"1","2"}', Infinity as
        # "Infinity", a lone surrogate as U+FFFD. Studio answers 500 there; the emulator
        # answers 400 naming the field and value (the message below), never a 500.
        (
            '[{"id":"createdAt","value":[1,2]}]',
            f"createdAt takes a number or {NUMBER_OR_RANGE}, not [1,2]",
        ),
        ('[{"id":"createdAt","value":{"gt":[1]}}]', "createdAt.gt takes a number, not [1]"),
        (
            '[{"id":"createdAt","value":"\\ud800"}]',
            f'createdAt takes a number or {NUMBER_OR_RANGE}, not "\\ud800"',
        ),
        (
            '[{"id":"createdAt","value":1e999}]',
            f"createdAt takes a number or {NUMBER_OR_RANGE}, not Infinity (past a double's range)",
        ),
        (
            '[{"id":"createdAt","value":' + "1" * 5000 + "}]",
            f"createdAt takes a number or {NUMBER_OR_RANGE}, not Infinity (past a double's range)",
        ),
        # jsonb compares across types, and JavaScript reads big numbers as doubles.
        ('[{"id":"createdAt","value":{"gt":{"x":1}}}]', 200),
        ('[{"id":"createdAt","value":9223372036854775808}]', 200),
        ('[{"id":"createdAt","value":-9223372036854775809}]', 200),
        ('[{"id":"createdAt","value":{"gte":9223372036854775808}}]', 200),
        ('[{"id":"createdAt","value":{"lt":true}}]', 200),
        # JSON.parse's own errors, and a deep but valid array that is no filter.
        ('[{"id":"createdAt","value":NaN}]', 400),
        # Within the 8 kB request line aiohttp allows, once percent-encoded.
        ("[" * 2_000, 400),
        ("[" * 500 + "]" * 500, 400),
    ],
)
async def test_odd_filter_values_answer_as_studio_does(
    client: TestClient, auth: dict[str, str], path: str, filters: str, status: int | str
) -> None:
    resp = await client.get(path, params={"filters": filters}, headers=auth)
    if status == 200:
        assert resp.status == 200, await resp.text()
        assert _strict_json(await resp.text()) == []
    elif isinstance(status, str):  # where Studio answers 500
        assert await _errors(resp) == (400, [f"error parsing filters: {status}"])
    else:
        got, errors = await _errors(resp)
        assert got == status, errors
        assert errors[0].startswith("error parsing filters: "), errors
    await _nothing_stored(client, auth)


async def test_filter_on_name_takes_any_value_as_javascript_prints_it(
    client: TestClient, auth: dict[str, str]
) -> None:
    # `ILIKE ${"%" + value + "%"}`: an array prints as "a", an object as
    # "[object Object]", a lone surrogate reaches Postgres as U+FFFD.
    for value in ('["a"]', '{"x":1}', '"a\\udc00"'):
        filters = '[{"id":"name","value":' + value + "}]"
        resp = await client.get("/api/asset", params={"filters": filters}, headers=auth)
        assert resp.status == 200, (value, await resp.text())
    for value, status in (
        ('"clip"', 400),  # not jsonb: Postgres refuses it (Studio's 500)
        ('"1700000000000"', 200),
        ("9223372036854775807", 200),
        ("-9223372036854775808", 200),
        ("1.5", 200),
    ):
        filters = '[{"id":"createdAt","value":' + value + "}]"
        resp = await client.get("/api/asset", params={"filters": filters}, headers=auth)
        assert resp.status == status, (value, await resp.text())


# -- webhooks -------------------------------------------------------------------------------


async def test_unparseable_webhook_url(client: TestClient, auth: dict[str, str]) -> None:
    for url in ("http://[::1/", "http://[not-ipv6]/", "http://host:99999/"):
        body = {"name": "w", "url": url, "events": ["asset.ready"]}
        resp = await client.post("/api/webhook", json=body, headers=auth)
        assert await _errors(resp) == (422, [f"bad url: {url}"]), url
    await _nothing_stored(client, auth)
    good = {"name": "w", "url": "http://127.0.0.1:9/", "events": ["asset.ready"]}
    created = await client.post("/api/webhook", json=good, headers=auth)
    assert created.status == 201
    hook = await created.json()
    bad = {**good, "url": "http://[::1/"}
    resp = await client.put(f"/api/webhook/{hook['id']}", json=bad, headers=auth)
    assert await _errors(resp) == (422, ["bad url: http://[::1/"])
    resp = await client.patch(
        f"/api/webhook/{hook['id']}", json={"url": "http://[::1/"}, headers=auth
    )
    assert await _errors(resp) == (422, ["bad url: http://[::1/"])
    got = await client.get(f"/api/webhook/{hook['id']}", headers=auth)
    assert (await got.json())["url"] == "http://127.0.0.1:9/"


# -- upload tokens and tus headers ----------------------------------------------------------


@pytest.mark.parametrize("token", ["é", "a.b.é", "ü.ü.ü", "a.b.c\u2603"])
async def test_non_ascii_upload_token_is_403(
    client: TestClient, auth: dict[str, str], token: str
) -> None:
    put = await client.put("/api/asset/upload/direct", params={"token": token}, data=b"x")
    status, errors = await _errors(put)
    assert status == 403
    assert errors[0].startswith("Invalid signed upload URL: "), errors
    tus = await client.post(
        "/api/asset/upload/tus",
        params={"token": token},
        headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1"},
    )
    status, errors = await _errors(tus)
    assert status == 403
    assert errors[0].startswith("Invalid signed upload URL: "), errors
    await _nothing_stored(client, auth)


@pytest.mark.parametrize(
    "value", ["\uff11\uff12", "²", "①", "\u0661\u0662", "9" * 5000, "99999999999999999999"]
)
async def test_tus_number_headers_read_only_ascii_digits(
    client: TestClient, auth: dict[str, str], value: str
) -> None:
    created = await create_upload(client, auth)
    tus_path = path_of(created["tusEndpoint"])
    base = {"Tus-Resumable": "1.0.0"}
    resp = await client.post(tus_path, headers={**base, "Upload-Length": value})
    assert (resp.status, await resp.text()) == (400, "Invalid Upload-Length header")
    made = await client.post(tus_path, headers={**base, "Upload-Length": "4"})
    assert made.status == 201, await made.text()
    upload = path_of(made.headers["Location"])
    resp = await client.patch(
        upload,
        data=b"abcd",
        headers={
            **base,
            "Upload-Offset": value,
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert (resp.status, await resp.text()) == (400, "Invalid Upload-Offset header")
    head = await client.head(upload, headers=base)
    assert head.headers["Upload-Offset"] == "0"


# -- scenarios ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000,
        "[" * 10_000 + "]" * 10_000,
        "{" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        "".join("  " * i + "k:\n" for i in range(250)),
        "name: x\ndescription: " + "[" * 2_000 + "1" + "]" * 2_000 + "\n",
    ],
)
async def test_deep_yaml_scenario_is_400(
    client: TestClient, auth: dict[str, str], text: str
) -> None:
    resp = await client.put("/_emulator/scenario", data=text.encode(), headers=auth)
    status, errors = await _errors(resp)
    assert status == 400, errors
    assert any("nested" in e or "YAML" in e for e in errors), errors
    got = await client.get("/_emulator/scenario", headers=auth)
    assert got.status == 200
    assert (await got.json())["name"] == "default"


async def test_yaml_aliases_are_refused(client: TestClient, auth: dict[str, str]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 9)}]")
    lines.append("description: *a11")
    text = "\n".join(lines) + "\n"
    resp = await asyncio.wait_for(
        client.put("/_emulator/scenario", data=text.encode(), headers=auth), 20
    )
    status, errors = await _errors(resp)
    assert status == 400
    assert any("alias" in e for e in errors), errors
    got = await client.get("/_emulator/scenario", headers=auth)
    assert (await got.json())["name"] == "default"


# -- header bytes ---------------------------------------------------------------------------


def test_invalid_header_bytes_answer_400_without_a_traceback(serve: Any, tmp_path: Path) -> None:
    import socket
    from urllib.parse import urlsplit

    server = serve()
    where = urlsplit(server.root)
    assert where.hostname == "127.0.0.1" and where.port
    for raw in (
        b"GET /api/asset HTTP/1.1\r\nHost: x\r\nX-Foo: \x01\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/asset HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    ):
        with socket.create_connection((where.hostname, where.port), timeout=5) as sock:
            sock.sendall(raw)
            reply = b""
            while b"\r\n" not in reply:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        # aiohttp answers these itself, before any middleware: a plain-text 400.
        assert reply.split(b" ", 2)[1] == b"400", (raw, reply[:80])
    status, _ = server.request("GET", "/_emulator/health")
    assert status == 200
    log = server.stderr()
    assert "Traceback" not in log, log[-2000:]


async def test_lone_surrogates_in_an_import_url_and_name_are_no_500(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Found by `make fuzz`: the duplicate-import lookup sent the raw URL to SQLite."""
    body = '{"name": "x\\udfff", "url": "http://127.0.0.1:9/\\ud800"}'
    for _ in range(2):  # the second is the duplicate lookup's turn to match the first
        resp = await client.post(
            "/api/asset/upload/url",
            data=body,
            headers={**auth, "Content-Type": "application/json"},
        )
        assert resp.status in (200, 201), await resp.text()
        _strict_json(await resp.text())
    await advance(client, auth, 30)
    assets = _strict_json(await (await client.get("/api/asset", headers=auth)).text())
    assert len(assets) == 1 and assets[0]["status"]["phase"] == "failed"


def test_a_bearer_key_that_is_not_utf8_is_401(serve: Any) -> None:
    """Found by `make fuzz`: raw header bytes that are not UTF-8 reached SQLite."""
    import socket

    server = serve("--clock", "manual")
    host, port = server.root.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET /api/asset HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe9\xff\r\n"
            b"Connection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer
    assert _strict_json(body.decode())["errors"][0].startswith("no token ")
