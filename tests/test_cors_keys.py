"""CORS-enabled API keys (README "CORS-enabled API keys"), as Studio's middleware/auth.ts
and controllers/api-token.js: keys declared on the command line or made through
`POST /_emulator/api-keys`; a key's origins get CORS headers, other origins 403; a key
with origins but no fullAccess may call only corsApiKeyAccessRules' routes.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.models import tenant_project_id, tenant_user_id
from emulator.settings import Settings, parse_key_spec, split_key_specs

ALICE, BOB, ROOT = "alice-key", "bob-key", "root-admin-key"
APP, DEV, EVIL = "https://app.example", "http://localhost:5173", "https://evil.example"
CLI_CORS = f"name=frontend,key=front-key,origins={APP}|{DEV}"
RESTRICTED = "access forbidden for CORS-enabled API key with restricted access"


def bearer(key: str, origin: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if origin:
        headers["Origin"] = origin
    return headers


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path) -> Callable[..., Any]:
    async def make(**settings: Any) -> TestClient:
        config = Settings(data_dir=tmp_path / "data", clock="manual", **settings)
        app = create_app(config, clock=ManualClock(start_ms=1_700_000_000_000))
        client: TestClient = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def locked(make_client: Callable[..., Any]) -> TestClient:
    client: TestClient = await make_client(api_key=(ALICE, BOB, CLI_CORS), admin_key=(ROOT,))
    return client


async def call(
    client: TestClient, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any, Any]:
    resp = await client.request(method, path, json=body, headers=headers)
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None), resp.headers


async def make_key(client: TestClient, caller: str | None, body: dict[str, Any]) -> Any:
    status, doc, _ = await call(
        client, "POST", "/_emulator/api-keys", bearer(caller) if caller else {}, body
    )
    assert status == 201, doc
    return doc


# -- settings ----------------------------------------------------------------------------


def test_the_long_form_declares_a_cors_key() -> None:
    parsed = parse_key_spec(f"name=frontend,key=abc,origins={APP}|{DEV},full_access=true")
    assert (parsed.key, parsed.name, parsed.origins, parsed.full_access) == (
        "abc",
        "frontend",
        (APP, DEV),
        True,
    )
    assert parse_key_spec("name=x,key=k,origins=*").origins == ("*",)
    assert parse_key_spec("plain").origins == ()
    # `;` separates keys in the env var, as before.
    assert split_key_specs(f"{ALICE};name=f,key=k,origins={APP}") == (
        ALICE,
        f"name=f,key=k,origins={APP}",
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"name=f,key=k,origins={APP}/", "no trailing /"),
        ("name=f,key=k,origins=app.example", "is not http(s)://HOST"),
        ("name=f,key=k,origins=|", "origins= is empty"),
        ("name=f,key=k,full_access=true", "give origins= too"),
        (f"name=f,key=k,origins={APP},full_access=yes", "must be true or false"),
    ],
)
def test_bad_cors_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.load(env={"LIVEPEER_EMULATOR_API_KEY": spec})


def test_an_admin_key_cannot_be_a_cors_key() -> None:
    with pytest.raises(ValueError, match="an admin key cannot be a CORS key"):
        Settings(admin_key=(f"name=a,key=k,origins={APP}",))


def test_one_key_given_twice_with_other_origins_is_an_error() -> None:
    with pytest.raises(ValueError, match="different origins"):
        Settings(api_key=("name=f,key=k", f"name=f,key=k,origins={APP}"))


# -- enforcement -------------------------------------------------------------------------


async def test_a_command_line_cors_key_from_its_origins(locked: TestClient) -> None:
    status, upload, headers = await call(
        locked, "POST", "/api/asset/request-upload", bearer("front-key", APP), {"name": "a"}
    )
    assert status == 200, upload
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Credentials"] == "true"
    asset_id = upload["asset"]["id"]
    # A route corsApiKeyAccessRules lists, from the other allowed origin.
    status, asset, headers = await call(
        locked, "GET", f"/api/asset/{asset_id}", bearer("front-key", DEV)
    )
    assert (status, asset["createdByTokenName"]) == (200, "frontend")
    assert headers["Access-Control-Allow-Origin"] == DEV


async def test_an_origin_the_key_does_not_allow_is_refused(locked: TestClient) -> None:
    status, body, headers = await call(
        locked, "POST", "/api/asset/request-upload", bearer("front-key", EVIL), {"name": "a"}
    )
    assert (status, body) == (
        403,
        {"errors": [f"credential disallows CORS access from origin {EVIL}"]},
    )
    assert "Access-Control-Allow-Origin" not in headers
    # Keys without CORS settings keep refusing every origin, as before.
    status, body, headers = await call(locked, "GET", "/api/asset", bearer(ALICE, APP))
    assert (status, body) == (
        403,
        {"errors": [f"credential disallows CORS access from origin {APP}"]},
    )
    assert "Access-Control-Allow-Origin" not in headers
    assert (await call(locked, "GET", "/api/asset", bearer(ALICE)))[0] == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/asset"),
        ("DELETE", "/api/asset/some-id"),
        ("GET", "/api/task"),
        ("GET", "/api/webhook"),
        ("POST", "/api/access-control/signing-key"),
        ("GET", "/api/asset/request-upload"),  # the literal route is POST-only
        ("HEAD", "/api/asset/some-id"),  # Studio's rules say get, not head
    ],
)
async def test_a_restricted_key_calls_only_studios_cors_routes(
    locked: TestClient, method: str, path: str
) -> None:
    # With the allowed Origin the refusal carries CORS headers, so the page can read it.
    status, body, headers = await call(locked, method, path, bearer("front-key", APP))
    assert status == 403
    if method != "HEAD":
        assert body == {"errors": [RESTRICTED]}
    assert headers["Access-Control-Allow-Origin"] == APP
    # Without an Origin (a server using the key) the key is restricted all the same.
    assert (await call(locked, method, path, bearer("front-key")))[0] == 403


async def test_allowed_routes_that_find_nothing_answer_404_with_cors(locked: TestClient) -> None:
    for method, path in [("GET", "/api/task/nope"), ("PATCH", "/api/asset/nope")]:
        status, body, headers = await call(locked, method, path, bearer("front-key", APP), {})
        assert status == 404, (method, path, body)
        assert headers["Access-Control-Allow-Origin"] == APP


async def test_preflights_pass_for_any_origin_and_the_real_call_decides(
    locked: TestClient,
) -> None:
    # A browser sends no key on a preflight: Studio lets every one through.
    resp = await locked.options(
        "/api/asset/request-upload",
        headers={
            "Origin": DEV,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == DEV
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "authorization, content-type"


async def test_api_token_routes_refuse_api_keys(locked: TestClient) -> None:
    forbidden = {"errors": ["access forbidden for API keys"]}
    for method, path in [
        ("GET", "/api/api-token"),
        ("POST", "/api/api-token"),
        ("GET", "/api/api-token/x"),
        ("DELETE", "/api/api-token/x"),
    ]:
        for headers in (bearer(ALICE), bearer(ROOT), bearer("front-key", EVIL)):
            status, body, _ = await call(locked, method, path, headers, {})
            assert (status, body) == (403, forbidden), (method, path, headers)
    status, body, _ = await call(locked, "GET", "/api/api-token", {})
    assert (status, body) == (401, {"errors": ["request is not authenticated"]})


# -- the control plane -------------------------------------------------------------------


async def test_a_key_made_through_the_control_plane_joins_the_tenant(
    locked: TestClient,
) -> None:
    cors = {"allowedOrigins": [APP], "fullAccess": False}
    doc = await make_key(
        locked, ALICE, {"name": "web", "tenantKey": ALICE, "access": {"cors": cors}}
    )
    assert doc == {
        "id": doc["id"],
        "kind": "api-token",
        "userId": tenant_user_id(ALICE),
        "projectId": tenant_project_id(ALICE),
        "name": "web",
        "access": {"cors": cors},
        "createdAt": 1_700_000_000_000,
    }
    web_key = doc["id"]
    status, upload, headers = await call(
        locked, "POST", "/api/asset/request-upload", bearer(web_key, APP), {"name": "w"}
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == APP
    # Alice's own key sees the asset the frontend key made: one tenant.
    status, asset, _ = await call(
        locked, "GET", f"/api/asset/{upload['asset']['id']}", bearer(ALICE)
    )
    assert (status, asset["createdByTokenName"]) == (200, "web")
    assert (await call(locked, "GET", "/api/asset", bearer(web_key, APP)))[1] == {
        "errors": [RESTRICTED]
    }
    # A restricted key is for web pages: the control plane is closed to it.
    status, body, _ = await call(locked, "POST", "/_emulator/reset", bearer(web_key), {})
    assert status == 403 and body["errors"][0].startswith(RESTRICTED)

    listed = (await call(locked, "GET", "/_emulator/api-keys", bearer(ALICE)))[1]
    assert listed == [doc]
    assert (await call(locked, "GET", "/_emulator/api-keys", bearer(BOB)))[1] == []
    assert (await call(locked, "GET", f"/_emulator/api-keys/{web_key}", bearer(ALICE)))[1] == doc
    assert (await call(locked, "GET", f"/_emulator/api-keys/{web_key}", bearer(BOB)))[0] == 404
    assert (await call(locked, "DELETE", f"/_emulator/api-keys/{web_key}", bearer(BOB)))[0] == 404
    assert (await call(locked, "DELETE", f"/_emulator/api-keys/{web_key}", bearer(ALICE)))[0] == 204
    status, body, _ = await call(
        locked, "GET", f"/api/asset/{upload['asset']['id']}", bearer(web_key)
    )
    assert (status, body) == (401, {"errors": [f"no token {web_key} found"]})


async def test_full_access_and_any_origin(locked: TestClient) -> None:
    doc = await make_key(
        locked, ALICE, {"access": {"cors": {"allowedOrigins": ["*"], "fullAccess": True}}}
    )
    status, assets, headers = await call(locked, "GET", "/api/asset", bearer(doc["id"], EVIL))
    assert (status, assets) == (200, [])
    assert headers["Access-Control-Allow-Origin"] == EVIL
    assert doc["name"] == "default"
    # fullAccess keys are not restricted: the control plane takes them as any key.
    assert (await call(locked, "GET", "/_emulator/clock", bearer(doc["id"])))[0] == 200


async def test_who_may_make_keys_for_which_tenant(locked: TestClient) -> None:
    body = {"tenantKey": ALICE, "access": {"cors": {"allowedOrigins": [APP]}}}
    status, answer, _ = await call(locked, "POST", "/_emulator/api-keys", bearer(BOB), body)
    assert status == 403 and "needs an admin key" in answer["errors"][0]
    assert (await call(locked, "POST", "/_emulator/api-keys", {}, body))[0] == 401
    doc = await make_key(locked, ROOT, body)
    assert doc["userId"] == tenant_user_id(ALICE)
    # A key made from a key made here joins the same tenant.
    joined = await make_key(locked, ROOT, {"tenantKey": doc["id"]})
    assert joined["userId"] == tenant_user_id(ALICE) and "access" not in joined
    status, answer, _ = await call(
        locked, "POST", "/_emulator/api-keys", bearer(ROOT), {"tenantKey": "nobody"}
    )
    assert (status, answer) == (422, {"errors": ["tenantKey nobody is not a key of this server"]})
    everyone = (await call(locked, "GET", "/_emulator/api-keys?all=true", bearer(ROOT)))[1]
    assert [k["id"] for k in everyone] == [doc["id"], joined["id"]]
    assert (await call(locked, "GET", "/_emulator/api-keys?all=true", bearer(ALICE)))[0] == 403


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"access": {"cors": {"allowedOrigins": [f"{APP}/"]}}}, "no trailing /"),
        ({"access": {"cors": {"allowedOrigins": "x"}}}, '"type"'),
        ({"access": {"rules": [{"resources": ["*"]}]}}, "additionalProperties"),
        ({"tenantKey": ""}, "minLength"),
        ({"owner": ALICE}, "additionalProperties"),
    ],
)
async def test_bad_key_bodies_are_refused(
    locked: TestClient, body: dict[str, Any], fragment: str
) -> None:
    status, answer, _ = await call(locked, "POST", "/_emulator/api-keys", bearer(ALICE), body)
    assert status == 422 and fragment in answer["errors"][0], answer


async def test_keys_survive_a_restart_and_go_with_their_tenant(
    make_client: Callable[..., Any],
) -> None:
    first: TestClient = await make_client(api_key=(ALICE,))
    kept = await make_key(first, ALICE, {"access": {"cors": {"allowedOrigins": [APP]}}})
    await first.close()
    second: TestClient = await make_client(api_key=(ALICE,))
    status, _, headers = await call(second, "GET", "/api/task/x", bearer(kept["id"], APP))
    assert status == 404 and headers["Access-Control-Allow-Origin"] == APP
    status, _, _ = await call(second, "POST", "/_emulator/reset", bearer(ALICE), {})
    assert status == 200
    status, body, _ = await call(second, "GET", "/api/task/x", bearer(kept["id"]))
    assert (status, body) == (401, {"errors": [f"no token {kept['id']} found"]})
    assert (await call(second, "GET", "/_emulator/api-keys", bearer(ALICE)))[1] == []


async def test_without_configured_keys_a_key_joins_any_token_tenant(
    make_client: Callable[..., Any],
) -> None:
    open_server: TestClient = await make_client()
    doc = await make_key(
        open_server, None, {"tenantKey": "my-token", "access": {"cors": {"allowedOrigins": [DEV]}}}
    )
    status, upload, headers = await call(
        open_server, "POST", "/api/asset/request-upload", bearer(doc["id"], DEV), {"name": "a"}
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == DEV
    status, asset, _ = await call(
        open_server, "GET", f"/api/asset/{upload['asset']['id']}", bearer("my-token")
    )
    assert (status, asset["userId"]) == (200, tenant_user_id("my-token"))
    status, body, _ = await call(open_server, "POST", "/_emulator/api-keys", {}, {})
    assert status == 400 and "tenantKey" in body["errors"][0]


# -- a real server, plain HTTP -----------------------------------------------------------


def http(
    root: str, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(root + path, data=data, method=method, headers=headers)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw, status, got = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raw, status, got = err.read(), err.code, err.headers
    return status, (json.loads(raw) if raw else None), got


@pytest.mark.e2e
def test_cors_keys_on_a_serve_process(serve: Any) -> None:
    server = serve(
        "--clock",
        "manual",
        env={"LIVEPEER_EMULATOR_API_KEY": f"{ALICE};{CLI_CORS}"},
    )
    root = server.root
    status, upload, headers = http(
        root, "POST", "/api/asset/request-upload", bearer("front-key", APP), {"name": "e2e"}
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == APP
    status, body, headers = http(root, "GET", "/api/asset", bearer("front-key", APP))
    assert (status, body) == (403, {"errors": [RESTRICTED]})
    status, body, headers = http(
        root, "GET", f"/api/asset/{upload['asset']['id']}", bearer("front-key", EVIL)
    )
    assert (status, body) == (
        403,
        {"errors": [f"credential disallows CORS access from origin {EVIL}"]},
    )
    assert headers["Access-Control-Allow-Origin"] is None

    status, doc, _ = http(
        root,
        "POST",
        "/_emulator/api-keys",
        bearer(ALICE),
        {"name": "web", "access": {"cors": {"allowedOrigins": [DEV], "fullAccess": True}}},
    )
    assert status == 201, doc
    status, assets, headers = http(root, "GET", "/api/asset", bearer(doc["id"], DEV))
    assert (status, assets) == (200, [])  # the CLI CORS key is a tenant of its own
    assert headers["Access-Control-Allow-Origin"] == DEV


@pytest.mark.e2e
def test_the_readme_example_runs(serve: Any) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### CORS-enabled API keys", 1)[1].split("\n## ", 1)[0]
    example = section.split("```sh", 1)[1].split("```", 1)[0]
    flags = re.findall(r"--api-key '?([^' \n]+)'?", example)
    assert flags == [
        "backend-key",
        "name=frontend,key=frontend-key,origins=http://localhost:5173|https://app.example",
    ]
    posted = re.search(r"/_emulator/api-keys .*?-d '([^']+)'", example, re.DOTALL)
    upload = re.search(r"-H 'Origin: ([^']+)'.*?-d '([^']+)'", example, re.DOTALL)
    assert posted and upload
    server = serve(*[arg for flag in flags for arg in ("--api-key", flag)])
    status, doc, _ = http(
        server.root, "POST", "/_emulator/api-keys", bearer("backend-key"), json.loads(posted[1])
    )
    assert status == 201 and doc["name"] == "web", doc
    origin, body = upload[1], json.loads(upload[2])
    status, _, headers = http(
        server.root, "POST", "/api/asset/request-upload", bearer(doc["id"], origin), body
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == origin
    status, _, _ = http(
        server.root, "POST", "/api/asset/request-upload", bearer(doc["id"], EVIL), body
    )
    assert status == 403
    # The command-line CORS key, from one of its origins.
    status, _, headers = http(
        server.root, "POST", "/api/asset/request-upload", bearer("frontend-key", APP), body
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == APP
