"""The read cache of GET /api/asset/{id} (issue 16): a write followed by a read never
answers the old document, across tenants, writes of every kind and restarts, and the
cache stays within its byte bound."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from emulator.app import create_app
from emulator.assets import Assets
from emulator.clock import ManualClock
from emulator.readcache import ENTRY_OVERHEAD, VARIANT_OVERHEAD, ReadCache
from emulator.routes.common import ASSETS
from emulator.settings import Settings
from emulator.store import AssetRow, Changes
from emulator.wire import dumps
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, upload


def _cache(client: TestClient) -> ReadCache:
    return client.server.app[ASSETS].read_cache


async def _get(client: TestClient, asset_id: str, auth: dict[str, str], **params: str) -> Any:
    resp = await client.get(f"/api/asset/{asset_id}", headers=auth, params=params)
    return resp.status, await resp.json()


# -- the cache itself -----------------------------------------------------------------


def test_a_read_that_began_before_an_invalidation_is_not_kept() -> None:
    cache = ReadCache()
    began = cache.generation
    cache.invalidate(["a"])  # a write committed while the read was in the database
    cache.put("a", "t", "v", b"old", began)
    assert cache.get("a", "v") is None
    cache.put("a", "t", "v", b"new", cache.generation)
    assert cache.get("a", "v") == ("t", b"new")


def test_the_cache_keeps_to_its_byte_bound_least_recently_used_first_out() -> None:
    body = b"x" * 1000
    per_asset = ENTRY_OVERHEAD + VARIANT_OVERHEAD + len(body)
    cache = ReadCache(max_bytes=per_asset * 10)
    for n in range(10):
        cache.put(f"a{n}", "t", "v", body, cache.generation)
    assert len(cache) == 10 and cache.size_bytes == per_asset * 10
    assert cache.get("a0", "v") is not None  # a0 is now the most recently used
    for n in range(10, 15):
        cache.put(f"a{n}", "t", "v", body, cache.generation)
        assert cache.size_bytes <= cache.max_bytes
    assert len(cache) == 10
    assert cache.get("a0", "v") is not None
    assert [cache.get(f"a{n}", "v") for n in range(1, 6)] == [None] * 5
    # A body larger than the whole bound is never kept (and evicts nothing).
    cache.put("huge", "t", "v", b"x" * cache.max_bytes, cache.generation)
    assert cache.get("huge", "v") is None and len(cache) == 10


def test_variants_are_kept_apart_and_capped_per_asset() -> None:
    cache = ReadCache()
    for n in range(6):
        cache.put("a", "t", ("http://h", n), f"{n}".encode(), cache.generation)
    kept = [cache.get("a", ("http://h", n)) for n in range(6)]
    assert kept[:2] == [None, None] and kept[2:] == [
        ("t", b"2"),
        ("t", b"3"),
        ("t", b"4"),
        ("t", b"5"),
    ]
    expected = ENTRY_OVERHEAD + 4 * (VARIANT_OVERHEAD + 1)
    assert cache.size_bytes == expected
    cache.invalidate(None)
    assert len(cache) == 0 and cache.size_bytes == 0


# -- through the API ----------------------------------------------------------------


async def test_reads_are_served_from_the_cache_until_the_asset_is_written(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    asset_id = created["asset"]["id"]
    cache = _cache(client)
    status, first = await _get(client, asset_id, auth)
    assert status == 200 and first["status"]["phase"] == "waiting"
    hits = cache.hits
    status, again = await _get(client, asset_id, auth)
    assert (status, again) == (200, first)
    assert cache.hits == hits + 1
    # Each processing step is a write: every read after it sees the new document.
    for _ in range(50):  # bounded: the instant-free default timeline has ~10 steps
        if first["status"]["phase"] == "ready":
            break
        resp = await client.post("/_emulator/clock/advance", json={"next": True}, headers=auth)
        assert resp.status == 200
        status, after = await _get(client, asset_id, auth)
        stored = await client.server.app[ASSETS].get_asset(auth["Authorization"][7:], asset_id)
        assert after["status"] == stored["status"]
        first = after
    assert first["status"]["phase"] == "ready"
    # PATCH answers the new document, and so does every read after it.
    resp = await client.patch(f"/api/asset/{asset_id}", json={"name": "renamed"}, headers=auth)
    assert resp.status == 200
    assert (await _get(client, asset_id, auth))[1]["name"] == "renamed"
    assert (await _get(client, asset_id, auth))[1]["name"] == "renamed"
    # DELETE: Studio's 404 for a deleted asset, cached or not.
    assert (await client.delete(f"/api/asset/{asset_id}", headers=auth)).status == 204
    assert await _get(client, asset_id, auth) == (404, {"errors": ["Asset not found"]})
    # restore: readable again, with its new status.
    assert (await client.post(f"/api/asset/{asset_id}/restore", headers=auth)).status == 204
    status, restored = await _get(client, asset_id, auth)
    assert status == 200 and restored["deleted"] is False


async def test_another_tenant_gets_the_same_404_from_the_cache(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset_id = (await create_upload(client, auth))["asset"]["id"]
    other = {"Authorization": f"Bearer other-{uuid.uuid4()}"}
    uncached = await _get(client, asset_id, other)
    assert (await _get(client, asset_id, auth))[0] == 200  # now cached for its owner
    assert uncached == (404, {"errors": ["not found"]})
    assert await _get(client, asset_id, other) == uncached


async def test_details_and_origin_are_separate_answers(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset_id = (await upload(client, auth, SAMPLE_MP4))["asset"]["id"]
    await advance(client, auth, 600)
    plain = (await _get(client, asset_id, auth))[1]
    detailed = (await _get(client, asset_id, auth, details="1"))[1]
    assert "tracks" not in plain["videoSpec"] and detailed["videoSpec"]["tracks"]
    assert "tracks" not in (await _get(client, asset_id, auth))[1]["videoSpec"]
    forwarded = {**auth, "X-Forwarded-Host": "cdn.example.test", "X-Forwarded-Proto": "https"}
    resp = await client.get(f"/api/asset/{asset_id}", headers=forwarded)
    via_proxy = await resp.json()
    assert via_proxy["playbackUrl"].startswith("https://cdn.example.test/hls/")
    assert (await _get(client, asset_id, auth))[1]["playbackUrl"] == plain["playbackUrl"]
    assert not plain["playbackUrl"].startswith("https://cdn.example.test")


async def test_a_tenant_reset_forgets_its_cached_assets(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset_id = (await create_upload(client, auth))["asset"]["id"]
    assert (await _get(client, asset_id, auth))[0] == 200
    resp = await client.post("/_emulator/reset", json={}, headers=auth)
    assert resp.status == 200
    assert await _get(client, asset_id, auth) == (404, {"errors": ["Asset not found"]})


async def test_a_read_overtaken_by_a_write_does_not_keep_the_old_document(
    client: TestClient, auth: dict[str, str]
) -> None:
    """The race the generation guards against: the read's row comes from before a write
    that commits (and invalidates) while the read is still on its way back."""
    created = await create_upload(client, auth)
    asset_id = created["asset"]["id"]
    assets: Assets = client.server.app[ASSETS]
    store = assets._store
    real_get = store.get_asset

    async def get_then_overtaken(wanted: str) -> AssetRow | None:
        row = await real_get(wanted)
        assert row is not None
        newer = AssetRow(row.tenant, {**row.doc, "name": "written meanwhile"}, row.media_path)
        await store.save(Changes(assets=[newer]))
        return row  # the document as it was when the read ran

    store.get_asset = get_then_overtaken  # type: ignore[method-assign]
    try:
        status, answered = await _get(client, asset_id, auth)
    finally:
        store.get_asset = real_get  # type: ignore[method-assign]
    assert status == 200 and answered["name"] == "clip"  # that read answers what it read
    assert (await _get(client, asset_id, auth))[1]["name"] == "written meanwhile"


async def test_a_restart_reads_what_was_written_before_it(
    tmp_path: Path, auth: dict[str, str]
) -> None:
    async def started() -> TestClient:
        settings = Settings(data_dir=tmp_path / "data", clock="manual")
        app = create_app(settings, clock=ManualClock(start_ms=1_700_000_000_000))
        client = TestClient(TestServer(app))
        await client.start_server()
        return client

    first = await started()
    try:
        asset_id = (await create_upload(first, auth))["asset"]["id"]
        assert (await _get(first, asset_id, auth))[1]["name"] == "clip"
        resp = await first.delete(f"/api/asset/{asset_id}", headers=auth)
        assert resp.status == 204
    finally:
        await first.close()
    second = await started()
    try:
        assert await _get(second, asset_id, auth) == (404, {"errors": ["Asset not found"]})
        assert len(_cache(second)) == 0
        body = await get_json(second, "/api/asset", auth)
        assert body == []
    finally:
        await second.close()


async def test_lists_share_the_cache_and_see_every_write(
    client: TestClient, auth: dict[str, str]
) -> None:
    ids = [(await create_upload(client, auth, name=f"a{n}"))["asset"]["id"] for n in range(3)]
    cache = _cache(client)
    resp = await client.get("/api/asset", headers=auth)
    first = await resp.read()
    # The same bytes wire.dumps gives the whole page: items joined, compact separators.
    assert first == dumps(json.loads(first)).encode()
    assert [a["id"] for a in json.loads(first)] == ids[::-1]
    hits = cache.hits
    assert await (await client.get("/api/asset", headers=auth)).read() == first
    assert cache.hits == hits + 3
    # A GET by id after the list is served by the entries the list made.
    status, one = await _get(client, ids[0], auth)
    assert status == 200 and one == json.loads(first)[2] and cache.hits == hits + 4
    # A write: the next list shows it (and moves it first: updatedAt is newer).
    await advance(client, auth, 1)
    resp = await client.patch(f"/api/asset/{ids[0]}", json={"name": "x"}, headers=auth)
    assert resp.status == 422  # not ready: nothing written
    assert (await client.delete(f"/api/asset/{ids[1]}", headers=auth)).status == 204
    listed = await get_json(client, "/api/asset", auth)
    assert [a["id"] for a in listed] == [ids[2], ids[0]]
    # ?details and another origin are their own variants in lists too.
    forwarded = {**auth, "X-Forwarded-Host": "cdn.example.test"}
    resp = await client.get("/api/asset", headers=forwarded, params={"details": "1"})
    assert resp.status == 200 and [a["id"] for a in await resp.json()] == [ids[2], ids[0]]
    limited = await client.get("/api/asset", headers=auth, params={"limit": "1"})
    assert len(await limited.json()) == 1 and 'rel="next"' in limited.headers["Link"]
