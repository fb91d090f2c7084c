"""POST /api/asset/upload/url: the emulator really downloads the URL."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, get_json


async def file_server(aiohttp_server):
    app = web.Application()

    async def clip(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(SAMPLE_MP4)

    async def boom(_: web.Request) -> web.Response:
        return web.Response(status=500, text="kaput")

    app.router.add_get("/clip.mp4", clip)
    app.router.add_get("/boom.mp4", boom)
    return await aiohttp_server(app)


async def test_import_downloads_and_processes(client: TestClient, auth, aiohttp_server) -> None:
    server = await file_server(aiohttp_server)
    url = str(server.make_url("/clip.mp4"))
    resp = await client.post(
        "/api/asset/upload/url", json={"name": "imported", "url": url}, headers=auth
    )
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {"asset", "task"}
    assert body["asset"]["status"]["phase"] == "waiting"
    assert body["asset"]["source"] == {"type": "url", "url": url}
    task = await get_json(client, f"/api/task/{body['task']['id']}", auth)
    assert task["status"]["phase"] == "waiting"
    assert task["params"]["upload"]["url"] == url

    # The same URL again while the first import is in flight: the same ids, 200.
    dup = await client.post(
        "/api/asset/upload/url", json={"name": "again", "url": url}, headers=auth
    )
    assert dup.status == 200
    dup_body = await dup.json()
    assert dup_body["asset"]["id"] == body["asset"]["id"]
    assert dup_body["task"]["id"] == body["task"]["id"]

    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{body['asset']['id']}?details=1", auth)
    assert asset["status"]["phase"] == "ready"
    assert asset["size"] == SAMPLE_MP4.stat().st_size
    assert asset["videoSpec"]["tracks"][0]["width"] == 320
    # Ready now, so a new import of the same URL is a new asset.
    third = await client.post("/api/asset/upload/url", json={"name": "3", "url": url}, headers=auth)
    assert third.status == 201
    assert (await third.json())["asset"]["id"] != body["asset"]["id"]


async def test_docs_alias_route_imports_too(client: TestClient, auth, aiohttp_server) -> None:
    server = await file_server(aiohttp_server)
    resp = await client.post(
        "/api/asset/request-upload/url",
        json={"name": "alias", "url": str(server.make_url("/clip.mp4"))},
        headers=auth,
    )
    assert resp.status == 201


async def test_failed_downloads_fail_the_asset(
    client: TestClient, auth, aiohttp_server, unused_tcp_port
) -> None:
    server = await file_server(aiohttp_server)
    cases = {
        str(server.make_url("/missing.mp4")): "failed to download: 404 Not Found",
        str(server.make_url("/boom.mp4")): "failed to download: 500 Internal Server Error",
        f"http://127.0.0.1:{unused_tcp_port}/x.mp4": (
            f"failed to download: cannot connect to 127.0.0.1:{unused_tcp_port}"
        ),
    }
    ids = {}
    for url in cases:
        resp = await client.post(
            "/api/asset/upload/url", json={"name": "x", "url": url}, headers=auth
        )
        assert resp.status == 201
        ids[url] = await resp.json()
    await advance(client, auth, 10)
    for url, message in cases.items():
        asset = await get_json(client, f"/api/asset/{ids[url]['asset']['id']}", auth)
        assert asset["status"] == {
            "phase": "failed",
            "updatedAt": asset["status"]["updatedAt"],
            "errorMessage": message,
        }
        task = await get_json(client, f"/api/task/{ids[url]['task']['id']}", auth)
        assert task["status"]["phase"] == "failed"
        assert task["status"]["errorMessage"] == message


async def test_imports_respect_the_size_limit(aiohttp_client, aiohttp_server, tmp_path) -> None:
    from emulator.app import create_app
    from emulator.clock import ManualClock
    from emulator.settings import Settings

    server = await file_server(aiohttp_server)
    settings = Settings(data_dir=tmp_path / "d", clock="manual", import_max_bytes=10_000)
    client = await aiohttp_client(create_app(settings, clock=ManualClock()))
    auth = {"Authorization": "Bearer small"}
    resp = await client.post(
        "/api/asset/upload/url",
        json={"name": "big", "url": str(server.make_url("/clip.mp4"))},
        headers=auth,
    )
    created = await resp.json()
    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "failed"
    assert asset["status"]["errorMessage"] == "failed to download: file larger than 10000 bytes"
    assert list((tmp_path / "d" / "partial").glob("*.part")) == []
