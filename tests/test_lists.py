"""GET /api/asset and /api/task: bare arrays, Studio's cursors, Link, filters, counts."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from aiohttp.test_utils import TestClient

from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, path_of, upload

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


async def test_pagination_over_150_assets_walks_the_link_header(client: TestClient, auth) -> None:
    created = []
    for i in range(150):
        created.append((await create_upload(client, auth, f"asset-{i:03}"))["asset"]["id"])
        if i % 10 == 9:
            await advance(client, auth, 1)  # distinct updatedAt values across the set
    seen: list[str] = []
    path: str | None = "/api/asset?limit=50"
    pages = 0
    while path:
        resp = await client.get(path, headers=auth)
        assert resp.status == 200
        page = await resp.json()
        assert isinstance(page, list)
        seen.extend(a["id"] for a in page)
        pages += 1
        link = resp.headers.get("Link")
        if link:
            match = LINK.match(link)
            assert match, link
            assert match["url"].startswith(str(client.make_url("/api/asset?")))
            path = path_of(match["url"])
        else:
            path = None
    # Three full pages carry a Link; the fourth (empty) page ends the walk.
    assert pages == 4
    assert len(seen) == 150 and set(seen) == set(created)
    # Default order: updatedAt desc, then createdAt desc — newest first.
    assert seen[:10] == list(reversed(created))[:10]


async def test_limit_defaults_and_bounds(client: TestClient, auth) -> None:
    for i in range(25):
        await create_upload(client, auth, f"a{i}")
    resp = await client.get("/api/asset", headers=auth)
    assert len(await resp.json()) == 20
    assert "cursor=skip20" in resp.headers["Link"]
    resp = await client.get("/api/asset?limit=abc", headers=auth)
    assert len(await resp.json()) == 20
    resp = await client.get("/api/asset?limit=5000&count=1", headers=auth)
    assert len(await resp.json()) == 25
    assert "Link" not in resp.headers
    assert resp.headers["X-Total-Count"] == "25"
    resp = await client.get("/api/asset?cursor=skip20", headers=auth)
    assert len(await resp.json()) == 5


async def test_filters_and_shortcuts(client: TestClient, auth) -> None:
    ready = await upload(client, auth, SAMPLE_MP4, "Holiday Video")
    await advance(client, auth, 10)
    other = await create_upload(client, auth, "work call")

    async def ids(query: str) -> list[str]:
        return [a["id"] for a in await get_json(client, f"/api/asset?{query}", auth)]

    assert await ids("phase=ready") == [ready["asset"]["id"]]
    assert await ids("phase=uploading") == [other["asset"]["id"]]
    assert await ids(f"playbackId={other['asset']['playbackId']}") == [other["asset"]["id"]]
    flt = quote(json.dumps([{"id": "name", "value": "holiday"}]))
    assert await ids(f"filters={flt}") == [ready["asset"]["id"]]
    flt = quote(json.dumps([{"id": "createdAt", "value": {"gt": 0}}]))
    assert len(await ids(f"filters={flt}")) == 2
    assert await ids("order=name-false") == [ready["asset"]["id"], other["asset"]["id"]]
    # ?details keeps the tracks in lists too.
    detailed = await get_json(client, "/api/asset?phase=ready&details=1", auth)
    assert "tracks" in detailed[0]["videoSpec"]
    bad = await client.get(
        "/api/asset?filters=" + quote('[{"id":"colour","value":1}]'), headers=auth
    )
    assert bad.status == 400
    assert (await bad.json())["errors"][0].startswith("error parsing filters:")
    bad = await client.get("/api/asset?filters=not-json", headers=auth)
    assert bad.status == 400


async def test_task_list_is_tenant_scoped(client: TestClient, auth) -> None:
    mine = await create_upload(client, auth)
    await create_upload(client, {"Authorization": "Bearer someone"})
    tasks = await get_json(client, "/api/task?count=1", auth)
    assert [t["id"] for t in tasks] == [mine["task"]["id"]]
    flt = quote(json.dumps([{"id": "outputAssetId", "value": mine["asset"]["id"]}]))
    assert len(await get_json(client, f"/api/task?filters={flt}", auth)) == 1
