"""Studio's HTTP layer at its edges (issue 14, items 1, 3, 4's key names, 5 and 10).

Each test names the Studio code it follows (livepeer/studio @670a0a66, packages/api/src/).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.cli import main as cli_main
from emulator.clock import ManualClock
from emulator.settings import Settings, parse_key_spec, split_key_specs
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, path_of, upload

MakeClient = Callable[..., Awaitable[TestClient]]
ORIGIN = "https://app.example"
IMPORT = {"name": "imported", "url": "https://example.com/v.mp4"}
HOOK = {"name": "w", "url": "https://example.com/h", "events": ["asset.ready"]}


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path) -> MakeClient:
    async def make(**settings: Any) -> TestClient:
        app = create_app(
            Settings(data_dir=tmp_path / "data", clock="manual", **settings),
            clock=ManualClock(start_ms=1_700_000_000_000),
        )
        client: TestClient = await aiohttp_client(app)
        return client

    return make


async def _error(resp: Any) -> tuple[int, list[str]]:
    body = await resp.json()
    assert list(body) == ["errors"], body
    return resp.status, body["errors"]


def _ajv(message: str) -> dict[str, Any]:
    return json.loads(message)  # type: ignore[no-any-return]


# -- item 1: a body is JSON only when its Content-Type says so ------------------------------


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        ("/api/asset/request-upload", {"name": "x"}, "name"),
        ("/api/asset/upload/url", IMPORT, "name"),
        ("/api/webhook", HOOK, "name"),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_not_labelled_json_is_not_read(
    client: TestClient,
    auth: dict[str, str],
    path: str,
    body: dict[str, Any],
    missing: str,
    content_type: str | None,
) -> None:
    """app-router.ts: `app.use(bodyParser.json())`, whose type test is `application/json`;
    any other body leaves `req.body` `{}`, which validatePost refuses (Ajv `required`)."""
    headers = dict(auth)
    if content_type:
        headers["Content-Type"] = content_type
    resp = await client.post(
        path,
        data=json.dumps(body).encode(),
        headers=headers,
        skip_auto_headers=() if content_type else ("Content-Type",),
    )
    status, errors = await _error(resp)
    assert status == 422
    assert _ajv(errors[0])["message"] == f"must have required property '{missing}'"
    assert await get_json(client, "/api/asset", auth) == []
    assert await get_json(client, "/api/webhook", auth) == []
    # The same bytes labelled as JSON (any charset parameter) are read.
    labelled = {**auth, "Content-Type": "Application/JSON; charset=utf-8"}
    ok = await client.post(path, data=json.dumps(body).encode(), headers=labelled)
    assert ok.status in (200, 201), await ok.text()


async def test_a_patch_not_labelled_json_changes_only_updated_at(
    client: TestClient, auth: dict[str, str]
) -> None:
    """asset.ts `app.patch("/:id")`: with `req.body` `{}` every field is undefined, and
    task/scheduler.ts `updateAsset` still sets `status.updatedAt`; the answer is 200."""
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 30)
    asset_id = created["asset"]["id"]
    before = await get_json(client, f"/api/asset/{asset_id}", auth)
    assert before["status"]["phase"] == "ready"
    await advance(client, auth, 5)
    resp = await client.patch(
        f"/api/asset/{asset_id}", data='{"name": "renamed"}', headers=auth
    )  # a str: aiohttp labels it text/plain, as fetch does
    assert resp.status == 200, await resp.text()
    after = await resp.json()
    assert after["name"] == before["name"]
    now = (await get_json(client, "/_emulator/clock", auth))["now"]
    assert before["status"]["updatedAt"] < now == after["status"]["updatedAt"]
    unchanged = {k: v for k, v in after.items() if k != "status"}
    assert unchanged == {k: v for k, v in before.items() if k != "status"}
    assert await get_json(client, f"/api/asset/{asset_id}", auth) == after


async def test_json_in_a_charset_body_parser_cannot_read_is_415(
    client: TestClient, auth: dict[str, str]
) -> None:
    """body-parser's json(): a charset that is not utf-* is 415 `unsupported charset "X"`,
    which errorHandler.ts turns into Studio's body (an error with a numeric status)."""
    headers = {**auth, "Content-Type": "application/json; charset=latin1"}
    resp = await client.post("/api/asset/request-upload", data=b'{"name":"x"}', headers=headers)
    assert await _error(resp) == (415, ['unsupported charset "LATIN1"'])


async def test_the_control_plane_takes_json_whatever_the_label(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Not Studio's: `curl -d '{"seconds": 1}'` (a form type) still moves the clock."""
    before = (await get_json(client, "/_emulator/clock", auth))["now"]
    resp = await client.post(
        "/_emulator/clock/advance",
        data=b'{"seconds": 2}',
        headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status == 200, await resp.text()
    assert (await get_json(client, "/_emulator/clock", auth))["now"] == before + 2000


# -- item 3: HEAD wherever GET answers -------------------------------------------------------


async def test_head_answers_every_api_get_with_its_headers_and_no_body(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Express routes answer HEAD on every `app.get` route with the GET's status and
    headers (Content-Length included) and no body (asset.ts, task.ts, webhook.ts,
    playback.ts all declare GETs only)."""
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 30)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    hook = await client.post("/api/webhook", json=HOOK, headers=auth)
    hook_id = (await hook.json())["id"]
    paths = [
        "/api/asset",
        "/api/asset?limit=1&count=1",
        f"/api/asset/{asset['id']}",
        f"/api/asset/{asset['id']}/",
        "/api/task",
        f"/api/task/{created['task']['id']}",
        f"/api/playback/{asset['playbackId']}",
        "/api/webhook",
        f"/api/webhook/{hook_id}",
        f"/api/webhook/{hook_id}/log",
        "/_emulator/health",
    ]
    for path in paths:
        got = await client.get(path, headers=auth)
        body = await got.read()
        head = await client.head(path, headers=auth)
        assert head.status == got.status == 200, path
        assert await head.read() == b"", path
        for name in ("Content-Type", "Link", "X-Total-Count"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        assert head.headers["Content-Length"] == str(len(body)), path


async def test_head_answers_errors_like_get(client: TestClient, auth: dict[str, str]) -> None:
    """The GET's status on HEAD: 404 `not found` (checkResourceAccess) and 401 for no key
    (middleware/auth.ts authorizer), bodiless."""
    for path, headers, status in [
        ("/api/asset/00000000-0000-4000-8000-000000000000", auth, 404),
        ("/api/asset", {}, 401),
    ]:
        got = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert (head.status, await head.read()) == (status, b"")
        assert head.headers["Content-Length"] == str(len(await got.read()))


async def test_head_answers_every_media_url(client: TestClient, auth: dict[str, str]) -> None:
    """What Studio's CDN serves (playbackUrl, the renditions, thumbnails, downloadUrl)
    answers HEAD, bodiless, with the GET's length and type."""
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 30)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    info = await get_json(client, f"/api/playback/{asset['playbackId']}", auth)
    urls = [asset["playbackUrl"], asset["downloadUrl"]]
    urls += [source["url"] for source in info["meta"]["source"]]
    pid = asset["playbackId"]
    urls.append(f"/asset/{pid}/video")
    for url in urls:
        path = path_of(url) if url.startswith("http") else url
        got = await client.get(path)
        head = await client.head(path)
        assert (head.status, got.status) == (200, 200), path
        assert await head.read() == b""
        assert head.headers["Content-Length"] == str(len(await got.read())), path
        assert head.headers["Content-Type"] == got.headers["Content-Type"], path


def test_every_route_is_registered_once_and_get_names_are_kept(tmp_path: Path) -> None:
    """HEAD is added for each GET, not listed beside it: no method is registered twice on
    one path, and the GET routes keep Studio's operationIds as names."""
    app = create_app(Settings(data_dir=tmp_path))
    seen: set[tuple[str, str]] = set()
    for route in app.router.routes():
        key = (route.method, route.resource.canonical if route.resource else "")
        assert key not in seen, key
        seen.add(key)
    for name, path in [
        ("getAsset", "/api/asset/{assetId}"),
        ("getAssets", "/api/asset"),
        ("getPlaybackInfo", "/api/playback/{id}"),
        ("getOutput", "/hls/{playbackId}/{path}"),
    ]:
        resource = app.router[name]
        assert resource.canonical == path
        assert {r.method for r in resource} >= {"GET", "HEAD"}
    assert ("HEAD", "/api/asset/upload/tus/{upload_id}") in seen  # tus's own HEAD


# -- item 5: what a key may do (middleware/auth.ts) ------------------------------------------


async def test_a_key_sent_from_a_browser_origin_is_refused(
    client: TestClient, auth: dict[str, str]
) -> None:
    """auth.ts `authorizer`: an Origin the key's CORS settings do not allow (no key here
    allows any) → 403 `credential disallows CORS access from origin <origin>`, on every
    route that needs a user; the response has no Access-Control-Allow-Origin."""
    browser = {**auth, "Origin": ORIGIN}
    for method, path, body in [
        ("GET", "/api/asset", None),
        ("POST", "/api/asset/request-upload", {"name": "x"}),
        ("POST", "/api/asset/upload/url", IMPORT),
        ("GET", "/api/task", None),
        ("POST", "/api/webhook", HOOK),
    ]:
        resp = await client.request(method, path, json=body, headers=browser)
        assert await _error(resp) == (
            403,
            [f"credential disallows CORS access from origin {ORIGIN}"],
        ), path
        assert "Access-Control-Allow-Origin" not in resp.headers
    assert await get_json(client, "/api/asset", auth) == []
    assert await get_json(client, "/api/webhook", auth) == []
    # Without a key it is not authenticated first (authorizer's order).
    resp = await client.get("/api/asset", headers={"Origin": ORIGIN})
    assert await _error(resp) == (401, ["request is not authenticated"])


async def test_public_routes_stay_open_to_browsers_with_or_without_a_key(
    client: TestClient, auth: dict[str, str]
) -> None:
    """app-router.ts `anyOriginPathPrefixes`: direct upload, tus and /playback/ allow any
    origin (and have no authorizer), so a key there does not matter; media files are the
    CDN's."""
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 30)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    for headers in ({"Origin": ORIGIN}, {**auth, "Origin": ORIGIN}):
        for path in (f"/api/playback/{asset['playbackId']}", path_of(asset["playbackUrl"])):
            resp = await client.get(path, headers=headers)
            assert resp.status == 200, path
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    pending = await create_upload(client, auth, "from a page")
    put = await client.put(
        path_of(pending["url"]), data=b"not media", headers={**auth, "Origin": ORIGIN}
    )
    assert put.status == 200, await put.text()


async def test_project_id_in_the_query_is_refused_for_keys(
    client: TestClient, auth: dict[str, str]
) -> None:
    """auth.ts `authenticator`: with a Bearer/Basic key, `req.query.projectId` → 400
    `projectId as query param not supported`, before routing (unknown routes too)."""
    for method, path in [
        ("GET", "/api/asset?projectId=p1"),
        ("POST", "/api/asset/request-upload?projectId=p1"),
        ("GET", "/api/playback/nothing?projectId=p1"),
        ("GET", "/api/nothing?projectId=p1"),
        ("GET", "/api/asset?projectId=&projectId="),
    ]:
        resp = await client.request(method, path, json={"name": "x"}, headers=auth)
        assert await _error(resp) == (400, ["projectId as query param not supported"]), path
    assert await get_json(client, "/api/asset", auth) == []
    # An empty value is falsy in Express; without a key the check is not made.
    assert (await client.get("/api/asset?projectId=", headers=auth)).status == 200
    resp = await client.get("/api/asset?projectId=p1")
    assert await _error(resp) == (401, ["request is not authenticated"])


async def test_an_unknown_key_is_refused_before_project_id(make_client: MakeClient) -> None:
    """auth.ts `authenticator`: the token lookup (401) comes before the projectId check."""
    client = await make_client(api_key=("known",))
    resp = await client.get("/api/asset?projectId=p", headers={"Authorization": "Bearer unknown"})
    assert await _error(resp) == (401, ["no token unknown found"])


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth_needs_the_keys_own_user(client: TestClient, key: str) -> None:
    """auth.ts `authenticator`: Basic is `userId:key`; a user that is not the key's owner
    → 401 `no token <key> found`; no password → 401 `no authorization token provided`."""
    created = await create_upload(client, {"Authorization": f"Bearer {key}"})
    user_id = created["asset"]["userId"]
    resp = await client.get("/api/asset", headers=_basic(user_id, key))
    assert resp.status == 200
    assert [a["id"] for a in await resp.json()] == [created["asset"]["id"]]
    for user in ("someone-else", "", "00000000-0000-4000-8000-000000000000"):
        resp = await client.get("/api/asset", headers=_basic(user, key))
        assert await _error(resp) == (401, [f"no token {key} found"]), user
    for header in (_basic(user_id, ""), {"Authorization": "Basic !!!"}):
        resp = await client.get("/api/asset", headers=header)
        assert await _error(resp) == (401, ["no authorization token provided"])


# -- item 4: createdByTokenName from the key's name -------------------------------------------


async def test_assets_record_the_name_of_the_key_that_created_them(
    make_client: MakeClient,
) -> None:
    """asset.ts `validateAssetPayload`: `createdByTokenName: req.token?.name` on both
    creates (request-upload, upload/url); Studio does not set it on tasks."""
    client = await make_client(
        api_key=("frontend=k-front", "name=ci runner,key=k-ci", "k-plain"),
        admin_key=("ops=k-ops",),
    )
    for key, name in [
        ("k-front", "frontend"),
        ("k-ci", "ci runner"),
        ("k-plain", "default"),
        ("k-ops", "ops"),
    ]:
        auth = {"Authorization": f"Bearer {key}"}
        created = await create_upload(client, auth)
        assert created["asset"]["createdByTokenName"] == name
        resp = await client.post("/api/asset/upload/url", json=IMPORT, headers=auth)
        imported = (await resp.json())["asset"]
        assert imported["createdByTokenName"] == name
        for asset in (created["asset"], imported):
            stored = await get_json(client, f"/api/asset/{asset['id']}", auth)
            assert stored["createdByTokenName"] == name
        task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
        assert "createdByTokenName" not in task


async def test_without_configured_keys_every_key_has_the_default_name(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    assert created["asset"]["createdByTokenName"] == "default"


def test_key_specs_short_long_and_several() -> None:
    assert split_key_specs("a, b") == ("a", "b")
    assert split_key_specs("front=k1,k2; name=ci,key=k3") == ("front=k1", "k2", "name=ci,key=k3")
    assert parse_key_spec("front=k1").name == "front"
    assert parse_key_spec("key=abc==").key == "abc=="
    assert parse_key_spec(" name = my app , key = k ").name == "my app"
    settings = Settings.load({}, {"LIVEPEER_EMULATOR_API_KEY": "front=k1,k2"})
    assert settings.api_keys == ("k1", "k2")
    assert settings.key_names == {"k1": "front", "k2": "default"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("name=x", "no key= given"),
        ("name=a,key=b,scope=all", "'scope=all' is not FIELD"),
        ("key=a,key=b", "key= is given twice"),
        ("abc==", "write a key as KEY or NAME=KEY"),
        ("=k", "write a key as KEY or NAME=KEY"),
        ("name=,key=k", "name= is empty"),
        ("a=k;b=k", "key 'k' is given twice, named 'a' and 'b'"),
    ],
)
def test_bad_key_specs_say_what_is_wrong(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="LIVEPEER_EMULATOR_API_KEY") as env_error:
        Settings.load({}, {"LIVEPEER_EMULATOR_API_KEY": value})
    assert message in str(env_error.value)
    with pytest.raises(ValueError, match=message):
        Settings(api_key=tuple(value.split(";")))


def test_serve_refuses_a_bad_key_spec(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["serve", "--api-key", "ok", "--api-key", "name=x"]) == 2
    err = capsys.readouterr().err
    assert "cannot start: --api-key: 'name=x': no key= given" in err


# -- item 10: the docs' alias is served and marked emulator-only -------------------------------


async def test_the_docs_alias_is_served_with_an_emulator_only_header(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Studio's asset.ts routes `/upload/url` only (`/request-upload/url` is its 404); the
    docs name the latter, so it is served, and every answer there says it is not Studio's."""
    header = "X-Livepeer-Emulator-Only"
    resp = await client.post("/api/asset/request-upload/url", json=IMPORT, headers=auth)
    assert resp.status == 201, await resp.text()
    assert "Studio answers it 404" in resp.headers[header]
    assert (await resp.json())["asset"]["name"] == "imported"
    for headers, status in [(auth, 422), ({}, 401)]:
        resp = await client.post("/api/asset/request-upload/url/", json={}, headers=headers)
        assert resp.status == status
        assert header in resp.headers
    resp = await client.post("/api/asset/upload/url", json=IMPORT, headers=auth)
    assert resp.status == 200  # the same URL again: the first import's ids
    assert header not in resp.headers
