"""The webhook management API under /api/webhook: statuses, bodies, validation, tenant
isolation, the delivery log and resend (fact sheet §7.1, Studio's webhook.ts)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.helpers import advance, create_upload, get_json


async def create(client: TestClient, auth: dict[str, str], **body: Any) -> Any:
    payload = {"name": "hook", "url": "http://127.0.0.1:9/hook", "events": ["asset.ready"], **body}
    resp = await client.post("/api/webhook", json=payload, headers=auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def errors_of(resp: Any) -> list[str]:
    body = await resp.json()
    return list(body["errors"])


async def test_create_answers_201_with_the_stored_document(
    client: TestClient, auth: dict[str, str]
) -> None:
    doc = await create(client, auth, sharedSecret="abc")
    assert set(doc) == {
        "id",
        "userId",
        "projectId",
        "createdAt",
        "kind",
        "name",
        "events",
        "url",
        "sharedSecret",
    }
    assert doc["kind"] == "webhook" and doc["sharedSecret"] == "abc"
    assert doc["events"] == ["asset.ready"]
    assert await get_json(client, f"/api/webhook/{doc['id']}", auth) == doc


async def test_a_secret_is_generated_and_legacy_event_accepted(
    client: TestClient, auth: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/webhook",
        json={"name": "legacy", "url": "https://example.com/h", "event": "asset.failed"},
        headers=auth,
    )
    assert resp.status == 201
    doc = await resp.json()
    assert doc["events"] == ["asset.failed"]
    assert len(doc["sharedSecret"]) >= 16


async def test_validation_errors(client: TestClient, auth: dict[str, str]) -> None:
    resp = await client.post("/api/webhook", json={"name": "x", "url": "http://h/"}, headers=auth)
    assert resp.status == 422
    assert await errors_of(resp) == ['must provide "events" field with subscriptions']

    resp = await client.post("/api/webhook", json={"url": "http://h/"}, headers=auth)
    assert resp.status == 422
    error = json.loads((await errors_of(resp))[0])
    assert error["keyword"] == "required" and error["params"] == {"missingProperty": "name"}

    resp = await client.post(
        "/api/webhook", json={"name": "x", "url": "ftp://h/", "events": []}, headers=auth
    )
    assert resp.status == 422
    assert json.loads((await errors_of(resp))[0])["keyword"] == "pattern"

    resp = await client.post(
        "/api/webhook",
        json={"name": "x", "url": "http://h/", "events": ["asset.exploded"]},
        headers=auth,
    )
    assert resp.status == 422
    error = json.loads((await errors_of(resp))[0])
    assert error["keyword"] == "enum" and error["instancePath"] == "/events/0"

    resp = await client.post(
        "/api/webhook", json={"name": "x", "url": "http://h/", "events": [], "x": 1}, headers=auth
    )
    assert resp.status == 422
    assert json.loads((await errors_of(resp))[0])["params"] == {"additionalProperty": "x"}

    as_json = {**auth, "Content-Type": "application/json"}  # unlabelled, it is not read
    resp = await client.post("/api/webhook", data=b"{nope", headers=as_json)
    assert resp.status == 400

    resp = await client.post("/api/webhook", json={"name": "x"})
    assert resp.status == 401
    assert await errors_of(resp) == ["request is not authenticated"]
    assert await get_json(client, "/api/webhook", auth) == []  # nothing was stored


async def test_list_pages_like_assets(client: TestClient, auth: dict[str, str]) -> None:
    ids = [(await create(client, auth, name=f"h{i}"))["id"] for i in range(3)]
    resp = await client.get("/api/webhook?limit=2", headers=auth)
    assert resp.status == 200
    first = await resp.json()
    # Studio's webhook.ts has no default order: table.ts find's `id ASC`.
    assert [d["id"] for d in first] == sorted(ids)[:2]
    assert 'cursor=skip2>; rel="next"' in resp.headers["Link"]
    resp = await client.get("/api/webhook?limit=2&cursor=skip2&count=1", headers=auth)
    assert [d["id"] for d in await resp.json()] == sorted(ids)[2:]
    assert "Link" not in resp.headers and resp.headers["X-Total-Count"] == "3"


async def test_put_patch_delete(client: TestClient, auth: dict[str, str]) -> None:
    doc = await create(client, auth, sharedSecret="keep-me")
    path = f"/api/webhook/{doc['id']}"
    resp = await client.put(
        path,
        json={"name": "replaced", "url": "https://example.com/new", "events": ["task.failed"]},
        headers=auth,
    )
    assert resp.status == 200
    assert await resp.json() == {"id": doc["id"]}
    now = await get_json(client, path, auth)
    assert (now["name"], now["url"], now["events"]) == (
        "replaced",
        "https://example.com/new",
        ["task.failed"],
    )
    assert now["createdAt"] == doc["createdAt"] and now["sharedSecret"] == "keep-me"

    resp = await client.patch(path, json={"name": "patched", "sharedSecret": "new"}, headers=auth)
    assert resp.status == 204 and await resp.read() == b""
    now = await get_json(client, path, auth)
    assert (now["name"], now["sharedSecret"], now["url"]) == (
        "patched",
        "new",
        "https://example.com/new",
    )
    resp = await client.patch(path, json={"kind": "x"}, headers=auth)
    assert resp.status == 422

    resp = await client.delete(path, headers=auth)
    assert resp.status == 204 and await resp.read() == b""
    resp = await client.get(path, headers=auth)
    assert resp.status == 404 and await errors_of(resp) == ["not found"]
    resp = await client.delete(path, headers=auth)
    assert resp.status == 404
    resp = await client.patch(path, json={"name": "again"}, headers=auth)
    assert resp.status == 404 and await errors_of(resp) == ["webhook not found"]
    assert await get_json(client, "/api/webhook", auth) == []


async def test_tenants_cannot_see_each_others_webhooks(
    client: TestClient, auth: dict[str, str]
) -> None:
    doc = await create(client, auth)
    other = {"Authorization": "Bearer another-tenant"}
    path = f"/api/webhook/{doc['id']}"
    for method, body in (("GET", None), ("PUT", {"name": "n", "url": "http://h/", "events": []})):
        resp = await client.request(method, path, json=body, headers=other)
        assert resp.status == 404 and await errors_of(resp) == ["not found"]
    resp = await client.patch(path, json={"name": "n"}, headers=other)
    assert resp.status == 404
    resp = await client.delete(path, headers=other)
    assert resp.status == 404
    assert await get_json(client, "/api/webhook", other) == []
    assert (await get_json(client, path, auth))["name"] == "hook"  # untouched


async def test_log_entry_and_resend(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    got: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append({"body": await request.json(), "sig": request.headers["Livepeer-Signature"]})
        return web.Response(status=202 if len(got) == 1 else 200, text=f"call {len(got)}")

    app = web.Application()
    app.router.add_post("/", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    doc = await create(client, auth, url=str(server.make_url("/")), events=["asset.created"])
    created = await create_upload(client, auth)
    await advance(client, auth, 0)
    assert len(got) == 1

    log = await get_json(client, f"/api/webhook/{doc['id']}/log", auth)
    assert len(log) == 1
    entry = log[0]
    assert entry["webhookId"] == doc["id"] and entry["event"] == "asset.created"
    assert entry["success"] is True and entry["duration"] >= 0
    assert entry["response"] == {"status": 202, "statusText": "Accepted", "body": "call 1"}
    assert entry["request"]["url"] == doc["url"] and entry["request"]["method"] == "POST"
    assert json.loads(entry["request"]["body"]) == got[0]["body"]
    assert "eventId" not in entry  # write-only in Studio
    one = await get_json(client, f"/api/webhook/{doc['id']}/log/{entry['id']}", auth)
    assert one == entry

    await advance(client, auth, 7)
    resp = await client.post(f"/api/webhook/{doc['id']}/log/{entry['id']}/resend", headers=auth)
    assert resp.status == 200, await resp.text()
    resent = await resp.json()
    assert resent["id"] != entry["id"] and resent["response"]["body"] == "call 2"
    assert len(got) == 2
    assert got[1]["body"]["id"] == got[0]["body"]["id"]  # the same event ...
    assert got[1]["body"]["timestamp"] == got[0]["body"]["timestamp"] + 7000  # ... sent now
    assert got[1]["body"]["payload"]["asset"]["id"] == created["asset"]["id"]
    log = await get_json(client, f"/api/webhook/{doc['id']}/log", auth)
    assert [e["id"] for e in log] == [resent["id"], entry["id"]]

    # Studio's checks on log routes, in its order.
    resp = await client.get(f"/api/webhook/{doc['id']}/log/nope", headers=auth)
    assert resp.status == 404 and await errors_of(resp) == ["webhook log not found"]
    resp = await client.get(f"/api/webhook/nope/log/{entry['id']}", headers=auth)
    assert resp.status == 404 and await errors_of(resp) == ["webhook not found"]
    other = {"Authorization": "Bearer another-tenant"}
    resp = await client.get(f"/api/webhook/{doc['id']}/log/{entry['id']}", headers=other)
    assert resp.status == 403 and await errors_of(resp) == ["invalid user"]
    assert await get_json(client, f"/api/webhook/{doc['id']}/log", other) == []
    second = await create(client, auth)
    resp = await client.get(f"/api/webhook/{second['id']}/log/{entry['id']}", headers=auth)
    assert resp.status == 400
    assert await errors_of(resp) == ["mismatch between webhook and webhook log"]


async def test_deliveries_endpoint_filters_and_reset_clears(
    client: TestClient, auth: dict[str, str], unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/"
    await create(client, auth, url=url, events=["asset.created", "task.spawned"])
    first = await create_upload(client, auth)
    await create_upload(client, auth)
    await advance(client, auth, 0)
    everything = await get_json(client, "/_emulator/webhooks/deliveries", auth)
    assert [d["event"] for d in everything] == ["task.spawned", "asset.created"] * 2  # newest 1st
    mine = await get_json(
        client,
        f"/_emulator/webhooks/deliveries?event=asset.created&asset={first['asset']['id']}",
        auth,
    )
    assert len(mine) == 1 and mine[0]["assetId"] == first["asset"]["id"]
    assert mine[0]["error"] and mine[0]["attempt"] == 1 and mine[0]["success"] is False
    others = {"Authorization": "Bearer another-tenant"}
    assert await get_json(client, "/_emulator/webhooks/deliveries", others) == []

    resp = await client.post("/_emulator/reset", json={}, headers=auth)
    assert resp.status == 200
    assert await get_json(client, "/_emulator/webhooks/deliveries", auth) == []
    assert await get_json(client, "/api/webhook", auth) == []
    await advance(client, auth, 3600)  # pending retries went with the reset
    assert await get_json(client, "/_emulator/webhooks/deliveries", auth) == []


async def test_trigger_sends_one_event_on_demand(
    client: TestClient, auth: dict[str, str], unused_tcp_port: int
) -> None:
    await create(client, auth, url=f"http://127.0.0.1:{unused_tcp_port}/", events=["asset.ready"])
    created = await create_upload(client, auth)
    resp = await client.post(
        "/_emulator/webhooks/trigger",
        json={"event": "asset.ready", "asset": created["asset"]["id"]},
        headers=auth,
    )
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["event"] == "asset.ready" and len(result["deliveries"]) == 1
    assert result["deliveries"][0]["eventId"] == result["id"]
    resp = await client.post(
        "/_emulator/webhooks/trigger", json={"event": "asset.ready", "asset": "nope"}, headers=auth
    )
    assert resp.status == 404
    resp = await client.post(
        "/_emulator/webhooks/trigger", json={"event": "stream.started", "asset": "x"}, headers=auth
    )
    assert resp.status == 422
