"""The request journal: GET/DELETE /_emulator/requests and the middleware feeding it."""

from __future__ import annotations

import uuid
from pathlib import Path

from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.journal import LIST_CHARS, Journal, Query, keep
from emulator.settings import Settings
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, path_of, upload


async def journal(client: TestClient, auth: dict[str, str] | None = None, **query: str):
    """The calls, oldest first (the server lists them newest first)."""
    resp = await client.get("/_emulator/requests", params=query, headers=auth or {})
    assert resp.status == 200, await resp.text()
    return list(reversed(await resp.json()))


async def test_calls_are_recorded_with_status_bodies_and_tenant(client: TestClient, auth) -> None:
    created = await create_upload(client, auth, name="journaled")
    resp = await client.get("/api/asset", params={"limit": "5"}, headers=auth)
    assert resp.status == 200

    calls = await journal(client, auth)
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("POST", "/api/asset/request-upload", 200),
        ("GET", "/api/asset", 200),
    ]
    first, second = calls
    assert first["id"] < second["id"]
    assert first["tenant"] == auth["Authorization"].split()[1]
    assert first["body"] == '{"name": "journaled"}'
    assert created["asset"]["id"] in first["response"]
    assert first["faultInjected"] is False and "fault" not in first
    assert second["query"] == {"limit": "5"} and "body" not in second
    assert isinstance(first["time"], int)


async def test_errors_are_recorded_with_the_status_the_client_got(client: TestClient, auth) -> None:
    bad = await client.post("/api/asset/request-upload", json={"nam": "x"}, headers=auth)
    assert bad.status == 422
    missing = await client.get(f"/api/asset/{uuid.uuid4()}", headers=auth)
    assert missing.status == 404
    anonymous = await client.get("/api/asset")
    assert anonymous.status == 401

    mine = await journal(client, auth)
    assert [c["status"] for c in mine] == [422, 404]
    assert "must have required property" in mine[0]["response"]
    assert mine[1]["response"] == '{"errors":["Asset not found"]}'
    # The anonymous 401 belongs to no tenant: only the key-less view shows it.
    everyone = await journal(client)
    assert [(c["path"], c["status"], "tenant" in c) for c in everyone][-1] == (
        "/api/asset",
        401,
        False,
    )


async def test_signed_upload_counts_as_the_uploaders_call(client: TestClient, auth) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    calls = await journal(client, auth, method="put")
    assert len(calls) == 1
    put = calls[0]
    assert (put["path"], put["status"]) == ("/api/asset/upload/direct", 200)
    assert put["query"]["token"] == created["url"].split("token=")[1]
    # Media bodies are streamed to disk, never kept in the journal.
    assert "body" not in put


async def test_tus_calls_count_as_the_uploaders(client: TestClient, auth) -> None:
    created = await create_upload(client, auth)
    tus = {"Tus-Resumable": "1.0.0"}
    data = SAMPLE_MP4.read_bytes()
    resp = await client.post(
        path_of(created["tusEndpoint"]), headers={**tus, "Upload-Length": str(len(data))}
    )
    assert resp.status == 201, await resp.text()
    location = path_of(resp.headers["Location"])
    headers = {**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    resp = await client.patch(location, data=data, headers=headers)
    assert resp.status == 204, await resp.text()

    calls = await journal(client, auth, path="/api/asset/upload/tus*")
    assert [(c["method"], c["status"]) for c in calls] == [("POST", 201), ("PATCH", 204)]
    assert calls[1]["path"] == location.split("?")[0].replace("%2F", "/")
    assert "body" not in calls[1]  # the media itself is never kept


async def test_control_plane_is_not_recorded(client: TestClient, auth) -> None:
    await advance(client, auth, 1)
    await get_json(client, "/_emulator/clock", auth)
    await journal(client, auth)
    assert await journal(client) == []


async def test_filters_method_path_glob_and_since(client: TestClient, auth) -> None:
    created = await create_upload(client, auth)
    asset_id = created["asset"]["id"]
    await get_json(client, f"/api/asset/{asset_id}", auth)
    moved = await advance(client, auth, 10)
    await get_json(client, "/api/task", auth)
    await get_json(client, f"/api/asset/{asset_id}", auth)

    paths = [c["path"] for c in await journal(client, auth, method="GET")]
    assert paths == [f"/api/asset/{asset_id}", "/api/task", f"/api/asset/{asset_id}"]
    globbed = await journal(client, auth, path="/api/asset/*")
    assert [c["method"] for c in globbed] == ["POST", "GET", "GET"]
    later = await journal(client, auth, since=str(moved["now"]))
    assert [c["path"] for c in later] == ["/api/task", f"/api/asset/{asset_id}"]
    both = await journal(client, auth, since=str(moved["now"]), path="/api/asset/*")
    assert len(both) == 1

    resp = await client.get("/_emulator/requests", params={"since": "yesterday"})
    assert resp.status == 400
    assert (await resp.json())["errors"][0].startswith("since must be a time in milliseconds")


async def test_tenants_see_only_their_calls_and_clear_only_theirs(client: TestClient) -> None:
    alice = {"Authorization": f"Bearer alice-{uuid.uuid4()}"}
    bob = {"Authorization": f"Bearer bob-{uuid.uuid4()}"}
    await create_upload(client, alice)
    await create_upload(client, bob)
    await create_upload(client, bob)
    assert len(await journal(client, alice)) == 1
    assert len(await journal(client, bob)) == 2
    assert len(await journal(client)) == 3

    resp = await client.delete("/_emulator/requests", headers=bob)
    assert (resp.status, await resp.json()) == (200, {"cleared": 2})
    assert await journal(client, bob) == []
    assert len(await journal(client, alice)) == 1

    resp = await client.delete("/_emulator/requests")
    assert (resp.status, await resp.json()) == (200, {"cleared": 1})
    assert await journal(client) == []


async def test_journal_is_a_bounded_ring(aiohttp_client, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d", clock="manual", journal_size=3)
    client = await aiohttp_client(create_app(settings))
    auth = {"Authorization": "Bearer ring"}
    for n in range(5):
        resp = await client.get("/api/asset", params={"n": str(n)}, headers=auth)
        assert resp.status == 200
    calls = await journal(client, auth)
    assert [c["query"]["n"] for c in calls] == ["2", "3", "4"]
    assert [c["id"] for c in calls] == [3, 4, 5]


def test_journal_size_setting_comes_from_the_environment() -> None:
    settings = Settings.load(env={"LIVEPEER_EMULATOR_JOURNAL_SIZE": "42"})
    assert settings.journal_size == 42
    assert Settings().journal_size == 10_000


def test_zero_size_keeps_nothing_and_bodies_are_cut() -> None:
    book = Journal(0, lambda tenant: 7)
    book.record(tenant="t", method="GET", path="/api/asset", query={}, status=200)
    assert book.read(Query()) == []

    long_body = b"x" * (LIST_CHARS * 100)
    kept = keep(long_body, limit=LIST_CHARS * 10)
    assert kept is not None
    assert (kept.text, kept.size, kept.complete) == ("x" * LIST_CHARS * 10, len(long_body), False)
    assert keep(b"") is None and keep(b"{}") == keep(b"{}", limit=2)
    whole = keep(b"{}")
    assert whole is not None and (whole.text, whole.complete) == ("{}", True)


async def test_injected_faults_are_marked(client: TestClient, auth) -> None:
    scenario = {
        "name": "one-503",
        "faults": [
            {
                "match": {"method": "GET", "path": "/api/asset", "nth": 1},
                "respond": {"status": 503},
            }
        ],
    }
    resp = await client.put("/_emulator/scenario", json=scenario, headers=auth)
    assert resp.status == 200, await resp.text()
    first = await client.get("/api/asset", headers=auth)
    second = await client.get("/api/asset", headers=auth)
    assert (first.status, second.status) == (503, 200)

    injected, real = await journal(client, auth, path="/api/asset")
    assert (injected["status"], injected["faultInjected"]) == (503, True)
    assert injected["fault"].startswith("one-503: faults[0]")
    assert "respond 503" in injected["fault"]
    assert (real["status"], real["faultInjected"]) == (200, False)


async def test_each_call_carries_its_duration_in_real_time(client: TestClient, auth) -> None:
    # A delay is felt in wall-clock time even on the manual clock, so it must show in
    # durationMs while the call's `time` (emulator time) stands still.
    scenario = {
        "name": "slow-list",
        "faults": [{"match": {"method": "GET", "path": "/api/asset", "nth": 1}, "delay": "200ms"}],
    }
    resp = await client.put("/_emulator/scenario", json=scenario, headers=auth)
    assert resp.status == 200, await resp.text()
    assert (await client.get("/api/asset", headers=auth)).status == 200
    assert (await client.get("/api/asset", headers=auth)).status == 200

    slow, quick = await journal(client, auth, path="/api/asset")
    assert slow["faultInjected"] is True
    assert isinstance(slow["durationMs"], float) and isinstance(quick["durationMs"], float)
    assert slow["durationMs"] >= 200
    assert 0 <= quick["durationMs"] < slow["durationMs"]
    assert slow["time"] == quick["time"]  # the manual clock did not move
    # The one-call view carries it too.
    one = await get_json(client, f"/_emulator/requests/{slow['id']}", auth)
    assert one["durationMs"] == slow["durationMs"]


def test_duration_is_kept_rounded_and_never_negative() -> None:
    book = Journal(4, lambda tenant: 0)
    call = book.record(
        tenant="t", method="GET", path="/x", query={}, status=200, duration_ms=12.34567
    )
    assert call.to_wire()["durationMs"] == 12.346
    odd = book.record(tenant="t", method="GET", path="/y", query={}, status=200, duration_ms=-1)
    assert odd.to_wire()["durationMs"] == 0.0


async def test_a_journal_of_size_zero_keeps_nothing_and_costs_no_middleware(
    aiohttp_client, tmp_path: Path, auth
) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", clock="manual", journal_size=0))
    assert not any(m.__name__ == "record" for m in app.middlewares)
    client = await aiohttp_client(app)
    created = await create_upload(client, auth, name="unjournaled")
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["name"] == "unjournaled"
    assert await journal(client, auth) == []


async def test_multibyte_bodies_are_cut_by_characters_in_lists(client: TestClient, auth) -> None:
    name = "é" * LIST_CHARS  # 2 bytes each: the body is twice LIST_CHARS bytes and more
    headers = {**auth, "Content-Type": "application/json"}
    body = f'{{"name": "{name}"}}'.encode()  # raw UTF-8, not \u escapes
    resp = await client.post("/api/asset/request-upload", data=body, headers=headers)
    assert resp.status == 200
    (call,) = await journal(client, auth)
    assert call["body"] == ('{"name": "' + name)[:LIST_CHARS]
    assert call["bodyTruncated"] is True and call["bodyBytes"] == len(
        f'{{"name": "{name}"}}'.encode()
    )
    full = await get_json(client, f"/_emulator/requests/{call['id']}", auth)
    assert full["body"] == f'{{"name": "{name}"}}' and "bodyTruncated" not in full
