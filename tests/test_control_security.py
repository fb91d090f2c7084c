"""The control plane's access model (README "Control API"): with keys configured, every
/_emulator/* call but health needs a key, a key acts on its own tenant only, and acting
on every tenant needs an --admin-key; scenario files load only from the shipped ones and
--scenarios-dir, size-capped, without echoing what a file holds. With no key configured,
the control plane stays open, as it always was for local use.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.scenarios import loading
from emulator.settings import Settings
from emulator.testing import Emulator
from tests.helpers import create_upload, get_json

ALICE, BOB, ROOT = "alice-key", "bob-key", "root-admin-key"
A = {"Authorization": f"Bearer {ALICE}"}
B = {"Authorization": f"Bearer {BOB}"}
ADMIN = {"Authorization": f"Bearer {ROOT}"}
SECRET_LINE = f"private_key: SECRET-{uuid.uuid4()}"

NOT_AUTHENTICATED = {"errors": ["request is not authenticated"]}

# Every control endpoint but health, each with a body it accepts.
GUARDED: list[tuple[str, str, Any]] = [
    ("POST", "/_emulator/reset", {}),
    ("GET", "/_emulator/clock", None),
    ("POST", "/_emulator/clock/advance", {"seconds": 1}),
    ("GET", "/_emulator/requests", None),
    ("GET", "/_emulator/requests/1", None),
    ("DELETE", "/_emulator/requests", None),
    ("GET", "/_emulator/webhooks/deliveries", None),
    ("GET", "/_emulator/webhooks/deliveries/some-id", None),
    ("POST", "/_emulator/webhooks/trigger", {"event": "asset.ready", "asset": "x"}),
    ("GET", "/_emulator/scenario", None),
    ("PUT", "/_emulator/scenario", {"name": "instant"}),
    ("DELETE", "/_emulator/scenario", None),
]


@pytest.fixture
def scenarios_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "slow.yaml").write_text("name: slow\ntimeline:\n  queue: 10s\n  processing: 20s\n")
    return folder


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file of the user's the server can read, outside the scenarios dir."""
    path = tmp_path / "id_secret"
    path.write_text(f"{SECRET_LINE}\nmore: secret material\n")
    return path


@pytest.fixture
def make_client(aiohttp_client: Any, tmp_path: Path, scenarios_dir: Path) -> Callable[..., Any]:
    async def make(**settings: Any) -> TestClient:
        config = Settings(
            data_dir=tmp_path / "data", clock="manual", scenarios_dir=scenarios_dir, **settings
        )
        app = create_app(config, clock=ManualClock(start_ms=1_700_000_000_000))
        client: TestClient = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def locked(make_client: Callable[..., Any]) -> TestClient:
    """API keys alice and bob, admin key root."""
    client: TestClient = await make_client(api_key=(ALICE, BOB), admin_key=(ROOT,))
    return client


async def call(
    client: TestClient, method: str, path: str, body: Any = None, auth: dict[str, str] | None = None
) -> tuple[int, Any]:
    resp = await client.request(method, path, json=body, headers=auth or {})
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


async def put_scenario(
    client: TestClient, body: Any, auth: dict[str, str] | None = None, query: str = ""
) -> tuple[int, str]:
    resp = await client.put(f"/_emulator/scenario{query}", json=body, headers=auth or {})
    return resp.status, await resp.text()


# -- with keys configured: who may call at all ----------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), GUARDED, ids=lambda v: str(v))
async def test_anonymous_control_calls_are_refused(
    locked: TestClient, method: str, path: str, body: Any
) -> None:
    assert await call(locked, method, path, body) == (401, NOT_AUTHENTICATED)
    # With a trailing slash too (every route has that variant).
    assert await call(locked, method, path + "/", body) == (401, NOT_AUTHENTICATED)


async def test_health_stays_open_and_unknown_keys_get_the_apis_401(locked: TestClient) -> None:
    assert await call(locked, "GET", "/_emulator/health") == (200, {"status": "ok"})
    mallory = {"Authorization": "Bearer mallory"}
    status, body = await call(locked, "GET", "/_emulator/requests", auth=mallory)
    assert (status, body) == (401, {"errors": ["no token mallory found"]})
    status, body = await call(locked, "POST", "/_emulator/reset", {"all": True}, mallory)
    assert (status, body) == (401, {"errors": ["no token mallory found"]})


async def test_an_admin_key_is_also_an_api_key(locked: TestClient) -> None:
    created = await create_upload(locked, ADMIN, name="admin's own")
    mine = await get_json(locked, "/api/asset", ADMIN)
    assert [a["id"] for a in mine] == [created["asset"]["id"]]
    assert await get_json(locked, "/api/asset", A) == []


# -- a key sees only its own tenant ------------------------------------------------------------


async def test_a_tenants_journal_never_shows_another_tenants_calls_or_tokens(
    locked: TestClient,
) -> None:
    secret = f"whsec-{uuid.uuid4()}"
    hook = {"name": "h", "url": "http://127.0.0.1:9/", "events": ["asset.ready"]}
    resp = await locked.post("/api/webhook", json={**hook, "sharedSecret": secret}, headers=B)
    assert resp.status == 201
    bobs = await create_upload(locked, B, name="bob's")
    token = bobs["url"].split("token=")[1]
    await create_upload(locked, A, name="alice's")

    resp = await locked.get("/_emulator/requests", headers=A)
    assert resp.status == 200
    text = await resp.text()
    assert [c["tenant"] for c in json.loads(text)] == [ALICE]
    assert token not in text and secret not in text and BOB not in text

    # Bob's calls by id, and everybody's list, are not Alice's to read.
    resp = await locked.get("/_emulator/requests", headers=B)
    bob_ids = [c["id"] for c in await resp.json()]
    assert len(bob_ids) == 2
    for call_id in bob_ids:
        status, body = await call(locked, "GET", f"/_emulator/requests/{call_id}", auth=A)
        assert (status, body) == (404, {"errors": ["request not found"]})
    status, body = await call(locked, "GET", "/_emulator/requests?all=true", auth=A)
    assert status == 403
    assert "needs an admin key" in body["errors"][0]
    assert token not in json.dumps(body)

    # The admin key reads everybody's, and any one call.
    everyone = await get_json(locked, "/_emulator/requests?all=true", ADMIN)
    assert {c["tenant"] for c in everyone} == {ALICE, BOB}
    full = await get_json(locked, f"/_emulator/requests/{bob_ids[0]}", ADMIN)
    assert full["tenant"] == BOB
    # The admin's own view, without ?all=true, is its own tenant's (none).
    assert await get_json(locked, "/_emulator/requests", ADMIN) == []


async def test_clearing_the_journal_of_everyone_needs_the_admin_key(locked: TestClient) -> None:
    await create_upload(locked, A)
    await create_upload(locked, B)
    status, body = await call(locked, "DELETE", "/_emulator/requests?all=true", auth=A)
    assert status == 403 and "admin key" in body["errors"][0]
    assert await call(locked, "DELETE", "/_emulator/requests", auth=A) == (200, {"cleared": 1})
    assert len(await get_json(locked, "/_emulator/requests", B)) == 1
    status, body = await call(locked, "DELETE", "/_emulator/requests?all=true", auth=ADMIN)
    assert (status, body) == (200, {"cleared": 1})
    assert await get_json(locked, "/_emulator/requests?all=true", ADMIN) == []


async def test_deliveries_are_scoped_like_the_journal(
    locked: TestClient, unused_tcp_port: int
) -> None:
    secret = f"whsec-{uuid.uuid4()}"
    hook = {
        "name": "h",
        "url": f"http://127.0.0.1:{unused_tcp_port}/",  # nobody listens: attempts fail
        "events": ["asset.created"],
        "sharedSecret": secret,
    }
    resp = await locked.post("/api/webhook", json=hook, headers=B)
    assert resp.status == 201
    await create_upload(locked, B)
    assert (await call(locked, "POST", "/_emulator/clock/advance", {"seconds": 0}, B))[0] == 200

    bobs = await get_json(locked, "/_emulator/webhooks/deliveries", B)
    assert len(bobs) == 1
    assert await get_json(locked, "/_emulator/webhooks/deliveries", A) == []
    status, body = await call(
        locked, "GET", f"/_emulator/webhooks/deliveries/{bobs[0]['id']}", auth=A
    )
    assert (status, body) == (404, {"errors": ["delivery not found"]})
    status, body = await call(locked, "GET", "/_emulator/webhooks/deliveries?all=true", auth=A)
    assert status == 403 and "admin key" in body["errors"][0]

    everyone = await get_json(locked, "/_emulator/webhooks/deliveries?all=true", ADMIN)
    assert [d["id"] for d in everyone] == [bobs[0]["id"]]
    one = await get_json(locked, f"/_emulator/webhooks/deliveries/{bobs[0]['id']}", ADMIN)
    assert one["id"] == bobs[0]["id"]


# -- global actions need the admin key ---------------------------------------------------------


async def test_reset_all_needs_the_admin_key(locked: TestClient) -> None:
    bobs = await create_upload(locked, B)
    bob_asset = f"/api/asset/{bobs['asset']['id']}"

    status, body = await call(locked, "POST", "/_emulator/reset", {"all": True}, A)
    assert status == 403
    assert body == {
        "errors": [
            "resetting every tenant needs an admin key (--admin-key / "
            "LIVEPEER_EMULATOR_ADMIN_KEY); an API key acts on its own tenant only"
        ]
    }
    assert (await call(locked, "GET", bob_asset, auth=B))[0] == 200

    # Alice's own reset leaves Bob alone.
    assert await call(locked, "POST", "/_emulator/reset", {}, A) == (200, {"reset": "tenant"})
    assert (await call(locked, "GET", bob_asset, auth=B))[0] == 200

    assert await call(locked, "POST", "/_emulator/reset", {"all": True}, ADMIN) == (
        200,
        {"reset": "all"},
    )
    assert (await call(locked, "GET", bob_asset, auth=B))[0] == 404


async def test_a_global_scenario_needs_the_admin_key(locked: TestClient) -> None:
    status, text = await put_scenario(locked, {"name": "instant"}, A, "?scope=global")
    assert status == 403 and "changing the global scenario needs an admin key" in text
    status, _ = await call(locked, "DELETE", "/_emulator/scenario?scope=global", auth=A)
    assert status == 403
    shown = await get_json(locked, "/_emulator/scenario", B)
    assert (shown["name"], shown["scope"]) == ("default", "default")

    # A tenant's own scenario is its business.
    status, _ = await put_scenario(locked, {"name": "instant"}, A)
    assert status == 200
    assert (await get_json(locked, "/_emulator/scenario", A))["scope"] == "tenant"
    assert (await get_json(locked, "/_emulator/scenario", B))["scope"] == "default"

    status, _ = await put_scenario(locked, {"name": "flaky-api"}, ADMIN, "?scope=global")
    assert status == 200
    shown = await get_json(locked, "/_emulator/scenario", B)
    assert (shown["name"], shown["scope"]) == ("flaky-api", "global")
    status, _ = await call(locked, "DELETE", "/_emulator/scenario?scope=global", auth=ADMIN)
    assert status == 200
    assert (await get_json(locked, "/_emulator/scenario", B))["scope"] == "default"


async def test_a_clock_advance_for_everyone_needs_the_admin_key(locked: TestClient) -> None:
    before = (await get_json(locked, "/_emulator/clock", B))["now"]
    status, body = await call(
        locked, "POST", "/_emulator/clock/advance", {"seconds": 5, "all": True}, A
    )
    assert status == 403 and "moving every tenant's clock" in body["errors"][0]
    assert (await get_json(locked, "/_emulator/clock", B))["now"] == before

    # Alice moves her own time only.
    status, moved = await call(locked, "POST", "/_emulator/clock/advance", {"seconds": 5}, A)
    assert status == 200 and moved["now"] == before + 5000
    assert (await get_json(locked, "/_emulator/clock", B))["now"] == before

    status, _ = await call(
        locked, "POST", "/_emulator/clock/advance", {"seconds": 7, "all": True}, ADMIN
    )
    assert status == 200
    assert (await get_json(locked, "/_emulator/clock", B))["now"] == before + 7000
    assert (await get_json(locked, "/_emulator/clock", A))["now"] == before + 12000


async def test_admin_keys_alone_lock_the_control_plane_but_not_the_api(
    make_client: Callable[..., Any],
) -> None:
    client: TestClient = await make_client(admin_key=(ROOT,))
    anyone = {"Authorization": f"Bearer anyone-{uuid.uuid4()}"}
    await create_upload(client, anyone)  # no API keys: every bearer token is a tenant
    assert (await call(client, "GET", "/_emulator/requests"))[0] == 401
    assert len(await get_json(client, "/_emulator/requests", anyone)) == 1
    assert (await call(client, "POST", "/_emulator/reset", {"all": True}, anyone))[0] == 403
    assert (await call(client, "POST", "/_emulator/reset", {"all": True}, ADMIN))[0] == 200


# -- with no keys: the control plane stays open ------------------------------------------------


async def test_without_keys_the_control_plane_is_open_as_before(
    make_client: Callable[..., Any],
) -> None:
    client: TestClient = await make_client()
    alice = {"Authorization": f"Bearer a-{uuid.uuid4()}"}
    bob = {"Authorization": f"Bearer b-{uuid.uuid4()}"}
    await create_upload(client, alice)
    bobs = await create_upload(client, bob)

    everyone = await get_json(client, "/_emulator/requests", {})
    assert len(everyone) == 2
    assert len(await get_json(client, "/_emulator/requests", alice)) == 1
    # A key with ?all=true is harmless here: nothing is locked.
    assert len(await get_json(client, "/_emulator/requests?all=true", alice)) == 2
    assert len(await get_json(client, f"/_emulator/requests/{everyone[0]['id']}", {})) > 0

    before = (await get_json(client, "/_emulator/clock", bob))["now"]
    assert (await call(client, "POST", "/_emulator/clock/advance", {"seconds": 2}))[0] == 200
    assert (await get_json(client, "/_emulator/clock", bob))["now"] == before + 2000

    status, _ = await put_scenario(client, {"name": "instant"}, query="?scope=global")
    assert status == 200
    assert (await get_json(client, "/_emulator/scenario", bob))["scope"] == "global"

    status, _ = await call(client, "POST", "/_emulator/reset", {})
    assert status == 400  # a key-less reset must say {"all": true}, as before
    assert await call(client, "POST", "/_emulator/reset", {"all": True}) == (
        200,
        {"reset": "all"},
    )
    assert (await call(client, "GET", f"/api/asset/{bobs['asset']['id']}", auth=bob))[0] == 404


# -- scenario files ---------------------------------------------------------------------------


@pytest.mark.parametrize("keys", ["none", "locked"])
async def test_files_outside_the_scenarios_dir_are_refused_unread(
    make_client: Callable[..., Any],
    scenarios_dir: Path,
    secret_file: Path,
    keys: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/etc/passwd, a secret of the user's, and ways around the directory check."""
    settings: dict[str, Any] = (
        {"api_key": (ALICE,), "admin_key": (ROOT,)} if keys == "locked" else {}
    )
    client: TestClient = await make_client(**settings)
    (scenarios_dir / "link.yaml").symlink_to(secret_file)
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(loading.os, "open", spy)
    attempts = [
        "/etc/passwd",
        str(secret_file),
        "../id_secret",
        f"{scenarios_dir}/../id_secret",
        "link.yaml",
        "/etc",
    ]
    for path in attempts:
        for auth in (A, ADMIN) if keys == "locked" else ({"Authorization": "Bearer t"},):
            status, text = await put_scenario(client, {"path": path}, auth)
            assert status == 403, (path, text)
            assert "refused: files are loaded only from the shipped scenarios" in text
            assert "root:" not in text and "SECRET" not in text and "secret material" not in text
    assert not [p for p in opened if "passwd" in p or "id_secret" in p], opened

    # Nothing of it is anywhere else either.
    view = ADMIN if keys == "locked" else {}
    for path in ("/_emulator/scenario", "/_emulator/requests?all=true"):
        resp = await client.get(path, headers=view)
        text = await resp.text()
        assert "SECRET" not in text and "root:" not in text


async def test_a_file_in_the_scenarios_dir_loads(
    make_client: Callable[..., Any], scenarios_dir: Path
) -> None:
    client: TestClient = await make_client(api_key=(ALICE,), admin_key=(ROOT,))
    for path in ("slow.yaml", str(scenarios_dir / "slow.yaml"), "./sub/../slow.yaml"):
        status, text = await put_scenario(client, {"path": path}, A)
        assert status == 200, text
        shown = json.loads(text)
        assert (shown["name"], shown["scope"]) == ("slow", "tenant")
    # A shipped scenario file loads by its path too.
    status, text = await put_scenario(
        client, {"path": str(loading.shipped_dir() / "instant.yaml")}, A
    )
    assert status == 200 and json.loads(text)["name"] == "instant"
    status, text = await put_scenario(client, {"path": "missing.yaml"}, A)
    assert status == 400 and "no such scenario file: missing.yaml" in text


async def test_without_a_scenarios_dir_only_shipped_files_load(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path / "d", clock="manual"))
    client: TestClient = await aiohttp_client(app)
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\n")
    status, text = await put_scenario(client, {"path": str(mine)}, A)
    assert status == 403 and "set --scenarios-dir" in text
    status, text = await put_scenario(client, {"path": "instant.yaml"}, A)  # the shipped dir
    assert status == 200 and json.loads(text)["name"] == "instant"


async def test_a_file_that_is_no_scenario_is_not_quoted(
    make_client: Callable[..., Any], scenarios_dir: Path
) -> None:
    client: TestClient = await make_client()
    auth = {"Authorization": "Bearer t"}
    generic = "not a scenario file (a YAML mapping)"
    files = {
        "plain.yaml": (f"{SECRET_LINE.replace(': ', '=')}\nsecond line\n".encode(), generic),
        "broken.yaml": (f"{SECRET_LINE}\n  - [unclosed: {{\n".encode(), generic),  # not YAML
        "list.yaml": (f"- {SECRET_LINE}\n".encode(), generic),  # YAML, not a mapping
        "binary.yaml": (b"\xff\xfe" + SECRET_LINE.encode(), "not UTF-8 text"),
    }
    for name, (content, message) in files.items():
        (scenarios_dir / name).write_bytes(content)
        status, answer = await put_scenario(client, {"path": name}, auth)
        assert status == 400, answer
        assert json.loads(answer) == {"errors": [f"{name}:0: {message}"]}

    # A real scenario's problem still names its line (and only that line's words).
    (scenarios_dir / "typo.yaml").write_text(
        f"name: typo\ntimeline:\n  queue: 5\n# {SECRET_LINE}\n"
    )
    status, answer = await put_scenario(client, {"path": "typo.yaml"}, auth)
    assert status == 400
    errors = json.loads(answer)["errors"]
    assert errors and all(e.startswith("typo.yaml:3: ") for e in errors), errors
    assert "SECRET" not in answer


async def test_a_big_file_is_refused_by_size_without_being_read(
    make_client: Callable[..., Any], scenarios_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: TestClient = await make_client()
    big = scenarios_dir / "big.yaml"
    with big.open("w") as out:
        out.write(f"# {SECRET_LINE}\nname: big\n")
        out.write("#" * (2 * 1024 * 1024))
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(loading.os, "open", spy)
    status, answer = await put_scenario(client, {"path": "big.yaml"}, {"Authorization": "Bearer t"})
    assert status == 400
    size = big.stat().st_size
    assert json.loads(answer) == {
        "errors": [
            f"big.yaml:0: {size} bytes is more than a scenario file may be (1048576 bytes); "
            "not read"
        ]
    }
    assert not [p for p in opened if p.endswith("big.yaml")], opened


async def test_a_fifo_in_the_scenarios_dir_does_not_block(
    make_client: Callable[..., Any], scenarios_dir: Path
) -> None:
    client: TestClient = await make_client()
    os.mkfifo(scenarios_dir / "pipe.yaml")
    status, answer = await put_scenario(
        client, {"path": "pipe.yaml"}, {"Authorization": "Bearer t"}
    )
    assert status == 400 and "no such scenario file" in answer


# -- the test handle against a locked server ---------------------------------------------------


@pytest.mark.e2e
def test_a_locked_serve_process_with_the_test_handle(serve: Any, scenarios_dir: Path) -> None:
    """Flags and env vars; the fixture's handle on a configured key stays tenant-scoped."""
    server = serve(
        "--clock",
        "manual",
        "--api-key",
        f"{ALICE},{BOB}",
        "--scenarios-dir",
        str(scenarios_dir),
        env={"LIVEPEER_EMULATOR_ADMIN_KEY": f"{ROOT}, other-admin"},
    )
    assert "2 API key(s) accepted, 2 admin key(s)" in server.startup_line
    alice, bob = Emulator(server.root, ALICE), Emulator(server.root, BOB)
    start = alice.now()
    assert alice.advance(3)["now"] == start + 3000 and bob.now() == start
    assert alice.use_scenario("instant")["scope"] == "tenant"
    assert bob.use_scenario(scenarios_dir / "slow.yaml")["name"] == "slow"
    status, _ = bob.request("GET", "/api/asset")
    assert status == 200
    alice.request("POST", "/api/asset/request-upload", {"name": "a"})
    assert [(c["method"], c["path"]) for c in alice.requests()] == [
        ("POST", "/api/asset/request-upload")
    ]
    assert [c["tenant"] for c in bob.requests()] == [BOB]
    assert bob.clear_requests() == 1

    assert server.request("GET", "/_emulator/requests")[0] == 401
    assert server.request("POST", "/_emulator/reset", {"all": True}, ALICE)[0] == 403
    status, body = server.request("PUT", "/_emulator/scenario", {"path": "slow.yaml"}, ALICE)
    assert (status, body["name"]) == (200, "slow")
    status, body = server.request("PUT", "/_emulator/scenario", {"path": "/etc/passwd"}, ALICE)
    assert status == 403 and "root:" not in json.dumps(body)
    assert server.request("POST", "/_emulator/reset", {"all": True}, "other-admin") == (
        200,
        {"reset": "all"},
    )
