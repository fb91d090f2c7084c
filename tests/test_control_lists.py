"""The control plane's two lists, GET /_emulator/requests and
GET /_emulator/webhooks/deliveries: newest first, in pages (?limit=, ?before=, a
`Link: rel="next"` header), bodies cut at 1 KiB and marked, and each entry whole on its
own endpoint, scoped to the caller's tenant like the lists.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from emulator.journal import LIST_CHARS, Journal, Query
from tests.helpers import advance, create_upload, get_json


async def page(client: TestClient, path: str, auth: dict[str, str]) -> tuple[list[Any], str]:
    """One page and the path of the next one ("" on the last page)."""
    resp = await client.get(path, headers=auth)
    assert resp.status == 200, await resp.text()
    link = resp.headers.get("Link", "")
    if not link:
        return await resp.json(), ""
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return await resp.json(), str(URL(match.group(1)).relative())


async def every_page(client: TestClient, path: str, auth: dict[str, str]) -> list[list[Any]]:
    pages: list[list[Any]] = []
    while path and len(pages) < 50:
        items, path = await page(client, path, auth)
        pages.append(items)
    return pages


# -- the request journal -----------------------------------------------------------------------


async def test_journal_lists_newest_first_in_pages(
    client: TestClient, auth: dict[str, str]
) -> None:
    for n in range(7):
        resp = await client.get("/api/asset", params={"n": str(n)}, headers=auth)
        assert resp.status == 200

    pages = await every_page(client, "/_emulator/requests?limit=3", auth)
    assert [[c["query"]["n"] for c in p] for p in pages] == [
        ["6", "5", "4"],
        ["3", "2", "1"],
        ["0"],
    ]
    ids = [c["id"] for p in pages for c in p]
    assert ids == sorted(ids, reverse=True)

    # The default page is 100, and new calls never push the newest out of sight.
    for n in range(7, 120):
        await client.get("/api/asset", params={"n": str(n)}, headers=auth)
    first, next_path = await page(client, "/_emulator/requests", auth)
    assert len(first) == 100 and first[0]["query"]["n"] == "119"
    assert "before=" in next_path
    rest, last_path = await page(client, next_path, auth)
    assert [c["query"]["n"] for c in rest] == [str(n) for n in range(19, -1, -1)]
    assert last_path == ""


async def test_journal_filters_apply_before_the_page(
    client: TestClient, auth: dict[str, str]
) -> None:
    for _ in range(5):
        await create_upload(client, auth)
        await client.get("/api/asset", headers=auth)
    pages = await every_page(client, "/_emulator/requests?method=POST&limit=2", auth)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert {c["method"] for p in pages for c in p} == {"POST"}
    # The filters travel in the next link.
    _, next_path = await page(client, "/_emulator/requests?method=POST&limit=2", auth)
    assert "method=POST" in next_path and "limit=2" in next_path


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "²", "1.5", "9" * 40])
async def test_a_bad_limit_is_a_400(client: TestClient, auth: dict[str, str], limit: str) -> None:
    for path in ("/_emulator/requests", "/_emulator/webhooks/deliveries"):
        resp = await client.get(path, params={"limit": limit}, headers=auth)
        assert resp.status == 400
        assert await resp.json() == {"errors": ["limit must be a whole number from 1 to 1000"]}


async def test_a_bad_before_is_a_400(client: TestClient, auth: dict[str, str]) -> None:
    resp = await client.get("/_emulator/requests", params={"before": "١٢"}, headers=auth)
    assert resp.status == 400
    assert (await resp.json())["errors"][0].startswith("before must be a call id")


async def test_limit_is_capped_at_1000(client: TestClient, auth: dict[str, str]) -> None:
    await client.get("/api/asset", headers=auth)
    resp = await client.get("/_emulator/requests", params={"limit": "5000"}, headers=auth)
    assert resp.status == 200 and len(await resp.json()) == 1


async def test_journal_bodies_are_cut_in_lists_and_whole_per_call(
    client: TestClient, auth: dict[str, str]
) -> None:
    for n in range(6):
        await create_upload(client, auth, name=f"asset {n} " + "x" * 200)
    resp = await client.get("/api/asset", headers=auth)
    answer = await resp.read()
    assert len(answer) > LIST_CHARS * 2
    await client.get("/api/asset", params={"limit": "1"}, headers=auth)
    name = "n" * 1500  # a request body over 1 KiB too
    await create_upload(client, auth, name=name)

    calls = await get_json(client, "/_emulator/requests?limit=3", auth)
    post, second_list, big_list = calls
    assert (post["method"], second_list["path"], big_list["path"]) == (
        "POST",
        "/api/asset",
        "/api/asset",
    )
    assert len(big_list["response"]) == LIST_CHARS
    assert big_list["responseTruncated"] is True
    assert big_list["responseBytes"] == len(answer)
    assert answer.decode().startswith(big_list["response"])
    assert post["bodyTruncated"] is True and len(post["body"]) == LIST_CHARS
    # A short body is whole, and unmarked.
    short = await get_json(client, f"/_emulator/requests?before={post['id']}&method=POST", auth)
    assert "bodyTruncated" not in short[0] and short[0]["body"].startswith('{"name"')

    whole = await get_json(client, f"/_emulator/requests/{big_list['id']}", auth)
    assert whole["response"] == answer.decode()
    assert "responseTruncated" not in whole and "responseBytes" not in whole
    assert json.loads(whole["response"]) == json.loads(answer)
    whole_post = await get_json(client, f"/_emulator/requests/{post['id']}", auth)
    assert json.loads(whole_post["body"])["name"] == name


async def test_one_call_is_the_callers_only(client: TestClient, auth: dict[str, str]) -> None:
    await client.get("/api/asset", headers=auth)
    (mine,) = await get_json(client, "/_emulator/requests", auth)
    other = {"Authorization": f"Bearer other-{uuid.uuid4()}"}
    for path in (
        f"/_emulator/requests/{mine['id']}",
        "/_emulator/requests/999999",
        "/_emulator/requests/abc",
    ):
        resp = await client.get(path, headers=other)
        assert resp.status == 404
        assert await resp.json() == {"errors": ["request not found"]}
    assert (await get_json(client, f"/_emulator/requests/{mine['id']}", auth))["id"] == mine["id"]


def test_journal_keeps_bodies_within_its_budget() -> None:
    big = b"y" * (10 * LIST_CHARS)
    book = Journal(100, lambda tenant: 0, body_budget=25 * LIST_CHARS)
    for n in range(5):
        book.record(tenant="t", method="GET", path=f"/{n}", query={}, status=200, response=big)
    newest_first = book.read(Query())
    # Each call weighs 9 KiB past the list excerpt: the two newest fit in 25 KiB.
    whole = [c.to_wire(full=True) for c in newest_first]
    assert [len(c["response"]) for c in whole] == [10 * LIST_CHARS] * 2 + [LIST_CHARS] * 3
    assert [c.get("responseTruncated", False) for c in whole] == [False] * 2 + [True] * 3
    assert all(c["responseBytes"] == len(big) for c in whole[2:])
    # A list never shows more than the excerpt.
    assert {len(c.to_wire()["response"]) for c in newest_first} == {LIST_CHARS}
    assert book.clear() == 5 and book.read(Query()) == []


def test_journal_pages_by_id() -> None:
    book = Journal(10, lambda tenant: 0)
    for n in range(15):
        book.record(tenant="t" if n % 2 else "u", method="GET", path=f"/{n}", query={}, status=200)
    assert [c.id for c in book.read(Query(), limit=3)] == [15, 14, 13]
    assert [c.id for c in book.read(Query(), before=13, limit=3)] == [12, 11, 10]
    assert [c.id for c in book.read(Query(tenant="t"), before=13)] == [12, 10, 8, 6]
    assert book.get(8, "t") is not None and book.get(8, "u") is None and book.get(3) is None


# -- webhook deliveries ------------------------------------------------------------------------


async def test_deliveries_newest_first_in_pages(
    client: TestClient, auth: dict[str, str], unused_tcp_port: int
) -> None:
    hook = {
        "name": "dead",
        "url": f"http://127.0.0.1:{unused_tcp_port}/",  # nobody listens: quick failures
        "events": ["asset.created", "task.spawned"],
    }
    resp = await client.post("/api/webhook", json=hook, headers=auth)
    assert resp.status == 201
    assets = []
    for n in range(55):
        assets.append((await create_upload(client, auth, name=f"a{n}"))["asset"]["id"])
    await advance(client, auth, 0)

    first, next_path = await page(client, "/_emulator/webhooks/deliveries", auth)
    assert len(first) == 100
    # The newest attempt is on top (the 1,000 oldest used to hide it).
    assert first[0]["assetId"] == assets[-1]
    second, last = await page(client, next_path, auth)
    assert len(second) == 10 and last == ""
    assert second[-1]["assetId"] == assets[0]
    ids = [d["id"] for d in first + second]
    assert len(set(ids)) == 110

    # Filters apply before the page.
    pages = await every_page(
        client, f"/_emulator/webhooks/deliveries?asset={assets[3]}&limit=1", auth
    )
    assert [[d["event"] for d in p] for p in pages] == [["task.spawned"], ["asset.created"], []]
    # Another tenant sees none of them.
    other = {"Authorization": f"Bearer other-{uuid.uuid4()}"}
    assert await get_json(client, "/_emulator/webhooks/deliveries", other) == []


async def test_delivery_bodies_are_cut_in_lists_and_whole_per_attempt(
    client: TestClient, auth: dict[str, str], unused_tcp_port: int
) -> None:
    hook = {"name": "h", "url": f"http://127.0.0.1:{unused_tcp_port}/", "events": ["asset.created"]}
    resp = await client.post("/api/webhook", json=hook, headers=auth)
    assert resp.status == 201
    await create_upload(client, auth, name="long " + "z" * 490)
    await advance(client, auth, 0)

    (listed,) = await get_json(client, "/_emulator/webhooks/deliveries", auth)
    whole = await get_json(client, f"/_emulator/webhooks/deliveries/{listed['id']}", auth)
    body = whole["request"]["body"]
    assert len(body) > LIST_CHARS and "z" * 490 in body
    assert "bodyTruncated" not in whole["request"]
    assert listed["request"]["body"] == body[:LIST_CHARS]
    assert listed["request"]["bodyTruncated"] is True
    assert listed["request"]["bodyBytes"] == len(body.encode())
    assert listed["request"]["headers"] == whole["request"]["headers"]

    other = {"Authorization": f"Bearer other-{uuid.uuid4()}"}
    for attempt in (listed["id"], "no-such-attempt"):
        resp = await client.get(f"/_emulator/webhooks/deliveries/{attempt}", headers=other)
        assert resp.status == 404
        assert await resp.json() == {"errors": ["delivery not found"]}
