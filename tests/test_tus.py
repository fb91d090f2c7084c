"""tus 1.0.0 protocol against the in-process emulator: creation, PATCH, HEAD, termination,
expiration, errors, racing PATCHes and CORS, with stored state checked after each."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from emulator.routes.tus import TUS as TUS_KEY
from emulator.tus import EXPIRES_AFTER_MS, MAX_SIZE, TusUploads
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, path_of

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {**TUS, "Content-Type": "application/offset+octet-stream"}
DATA = SAMPLE_MP4.read_bytes()


def uploads(client: TestClient) -> TusUploads:
    return client.server.app[TUS_KEY]  # type: ignore[union-attr]


async def tus_create(
    client: TestClient, created: dict[str, Any], length: int = len(DATA), **headers: str
) -> str:
    """POST to the tusEndpoint; returns the Location path."""
    resp = await client.post(
        path_of(created["tusEndpoint"]),
        headers={**TUS, "Upload-Length": str(length), **headers},
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Upload-Offset"] == "0"
    return path_of(resp.headers["Location"])


async def tus_patch(client: TestClient, location: str, offset: int, data: bytes, **headers: str):  # type: ignore[no-untyped-def]
    return await client.patch(
        location, data=data, headers={**OCTET, "Upload-Offset": str(offset), **headers}
    )


async def asset_and_task(client: TestClient, auth: dict[str, str], created: dict[str, Any]):  # type: ignore[no-untyped-def]
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    return asset, task


def partial_files(client: TestClient) -> list[Path]:
    return sorted(uploads(client).dir.iterdir())


async def test_options_advertise_version_extensions_and_max_size(client: TestClient) -> None:
    for path in ("/api/asset/upload/tus", "/api/asset/upload/tus/directUpload%2Fanything"):
        resp = await client.options(path)  # no API key, no token
        assert resp.status == 204, await resp.text()
        assert resp.headers["Tus-Version"] == "1.0.0"
        assert resp.headers["Tus-Resumable"] == "1.0.0"
        assert resp.headers["Tus-Extension"].split(",") == [
            "creation",
            "creation-with-upload",
            "creation-defer-length",
            "termination",
            "expiration",
        ]
        assert resp.headers["Tus-Max-Size"] == str(MAX_SIZE)


async def test_upload_in_chunks_then_processing_runs_as_for_a_direct_put(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    playback_id = created["asset"]["playbackId"]
    metadata = "filename " + base64.b64encode(b"sample.mp4").decode() + ",filetype"
    resp = await client.post(
        path_of(created["tusEndpoint"]),
        headers={**TUS, "Upload-Length": str(len(DATA)), "Upload-Metadata": metadata},
    )
    assert resp.status == 201
    root = str(client.make_url(""))
    assert resp.headers["Location"] == f"{root}/api/asset/upload/tus/directUpload%2F{playback_id}"
    assert resp.headers["livepeer-playback-id"] == playback_id
    assert resp.headers["Upload-Expires"].endswith(" GMT")
    location = path_of(resp.headers["Location"])

    half = len(DATA) // 2
    resp = await tus_patch(client, location, 0, DATA[:half])  # no API key, no token
    assert resp.status == 204, await resp.text()
    assert resp.headers["Upload-Offset"] == str(half)
    assert resp.headers["Tus-Resumable"] == "1.0.0"

    head = await client.head(location, headers=TUS)
    assert head.status == 200
    assert head.headers["Upload-Offset"] == str(half)
    assert head.headers["Upload-Length"] == str(len(DATA))
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Upload-Metadata"] == metadata
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("uploading", "pending")
    # The partial file is beside the media, never an asset of its own.
    assert [p.name for p in partial_files(client)] == [f"{playback_id}.part"]
    assert [a["id"] for a in await get_json(client, "/api/asset", auth)] == [asset["id"]]

    # A decoded slash names the same upload.
    resp = await tus_patch(client, location.replace("%2F", "/"), half, DATA[half:])
    assert resp.status == 204, await resp.text()
    assert resp.headers["Upload-Offset"] == str(len(DATA))
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("waiting", "waiting")
    assert partial_files(client) == []

    await advance(client, auth, 10)
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("ready", "completed")
    assert asset["size"] == len(DATA)
    hashes = {h["algorithm"]: h["hash"] for h in asset["hash"]}
    assert hashes == {
        "md5": hashlib.md5(DATA).hexdigest(),
        "sha256": hashlib.sha256(DATA).hexdigest(),
    }
    assert asset["videoSpec"]["duration"] == 2.0
    media = await client.get(f"/asset/{playback_id}/video")
    assert await media.read() == DATA

    # The finished upload still answers HEAD (a client may check before resuming).
    head = await client.head(location, headers=TUS)
    assert (head.status, head.headers["Upload-Offset"]) == (200, str(len(DATA)))
    assert "Upload-Expires" not in head.headers


async def test_creation_with_upload_completes_in_one_request(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    resp = await client.post(
        path_of(created["tusEndpoint"]),
        data=DATA,
        headers={**OCTET, "Upload-Length": str(len(DATA))},
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Upload-Offset"] == str(len(DATA))
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("waiting", "waiting")


async def test_deferred_length_is_given_by_a_later_patch(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    resp = await client.post(
        path_of(created["tusEndpoint"]),
        data=DATA[:1000],
        headers={**OCTET, "Upload-Defer-Length": "1"},
    )
    assert resp.status == 201, await resp.text()
    location = path_of(resp.headers["Location"])
    head = await client.head(location, headers=TUS)
    assert head.headers["Upload-Defer-Length"] == "1"
    assert head.headers["Upload-Offset"] == "1000"
    assert "Upload-Length" not in head.headers
    resp = await tus_patch(client, location, 1000, DATA[1000:], **{"Upload-Length": str(len(DATA))})
    assert resp.status == 204, await resp.text()
    asset, _ = await asset_and_task(client, auth, created)
    assert asset["status"]["phase"] == "waiting"


async def test_token_errors_are_studios_json(client: TestClient, auth: dict[str, str]) -> None:
    resp = await client.post("/api/asset/upload/tus", headers={**TUS, "Upload-Length": "10"})
    assert resp.status == 401
    assert await resp.json() == {
        "errors": ["Missing uploadToken metadata from /request-upload API"]
    }

    resp = await client.post(
        "/api/asset/upload/tus?token=not.a.jwt", headers={**TUS, "Upload-Length": "10"}
    )
    assert resp.status == 403
    assert (await resp.json())["errors"][0].startswith("Invalid signed upload URL")

    created = await create_upload(client, auth)
    location = await tus_create(client, created)
    assert (await tus_patch(client, location, 0, DATA)).status == 204
    resp = await client.post(
        path_of(created["tusEndpoint"]), headers={**TUS, "Upload-Length": "10"}
    )
    assert resp.status == 422
    assert await resp.json() == {"errors": ["asset has already been uploaded"]}

    # An asset finished by a direct PUT refuses tus too, and vice versa.
    other = await create_upload(client, auth)
    put = await client.put(path_of(other["url"]), data=DATA)
    assert put.status == 200
    resp = await client.post(path_of(other["tusEndpoint"]), headers={**TUS, "Upload-Length": "1"})
    assert resp.status == 422
    put = await client.put(path_of(created["url"]), data=DATA)
    assert put.status == 422


async def test_protocol_errors(client: TestClient, auth: dict[str, str]) -> None:
    created = await create_upload(client, auth)
    endpoint = path_of(created["tusEndpoint"])

    # 412: every request but OPTIONS must say which tus version it speaks.
    resp = await client.post(endpoint, headers={"Upload-Length": "10"})
    assert (resp.status, resp.headers["Tus-Version"]) == (412, "1.0.0")
    location = await tus_create(client, created, length=100)
    for method in ("HEAD", "PATCH", "DELETE"):
        resp = await client.request(method, location, headers={"Upload-Offset": "0"})
        assert resp.status == 412, method
    resp = await client.patch(
        location, data=b"x", headers={"Tus-Resumable": "0.2.2", "Upload-Offset": "0"}
    )
    assert resp.status == 412

    # 415: PATCH bodies are application/offset+octet-stream.
    resp = await client.patch(
        location,
        data=b"x",
        headers={**TUS, "Upload-Offset": "0", "Content-Type": "application/octet-stream"},
    )
    assert (resp.status, await resp.text()) == (
        415,
        "Content-Type must be application/offset+octet-stream",
    )

    # 409: the offset must be the one the server has.
    assert (await tus_patch(client, location, 0, b"a" * 10)).status == 204
    resp = await tus_patch(client, location, 0, b"b" * 10)
    assert (resp.status, await resp.text()) == (409, "Upload-Offset conflict")
    resp = await tus_patch(client, location, 20, b"b" * 10)
    assert resp.status == 409

    # 413: not one byte past Upload-Length, nor a length past Tus-Max-Size.
    resp = await tus_patch(client, location, 10, b"c" * 91)
    assert resp.status == 413
    resp = await client.post(endpoint, headers={**TUS, "Upload-Length": str(MAX_SIZE + 1)})
    assert resp.status == 413

    # 400: malformed headers.
    resp = await client.patch(location, data=b"x", headers={**OCTET, "Upload-Offset": "-1"})
    assert resp.status == 400
    resp = await client.post(endpoint, headers=TUS)
    assert resp.status == 400
    resp = await client.post(
        endpoint, headers={**TUS, "Upload-Length": "1", "Upload-Metadata": "name not-base64!"}
    )
    assert resp.status == 400

    # 404: no such upload; errors are plain text, as Studio's tus server sends them.
    resp = await client.head("/api/asset/upload/tus/directUpload%2Fnope", headers=TUS)
    assert resp.status == 404
    resp = await tus_patch(client, "/api/asset/upload/tus/directUpload%2Fnope", 0, b"x")
    assert (resp.status, await resp.text()) == (404, "The file for this url was not found")

    # None of that moved the upload: still 10 bytes, all of them the first PATCH's.
    head = await client.head(location, headers=TUS)
    assert head.headers["Upload-Offset"] == "10"
    [partial] = partial_files(client)
    assert partial.read_bytes() == b"a" * 10
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("uploading", "pending")


async def test_termination_deletes_the_partial_upload(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    location = await tus_create(client, created)
    assert (await tus_patch(client, location, 0, DATA[:5000])).status == 204
    assert len(partial_files(client)) == 1
    resp = await client.delete(location, headers=TUS)
    assert resp.status == 204
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert partial_files(client) == []
    assert (await client.head(location, headers=TUS)).status == 404
    assert (await tus_patch(client, location, 5000, DATA[5000:])).status == 404
    assert (await client.delete(location, headers=TUS)).status == 404
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("uploading", "pending")
    # The asset still waits for its bytes: a new upload can start from scratch.
    location = await tus_create(client, created)
    assert (await tus_patch(client, location, 0, DATA)).status == 204
    asset, _ = await asset_and_task(client, auth, created)
    assert asset["status"]["phase"] == "waiting"


async def test_expired_uploads_are_removed_when_the_clock_passes_their_expiry(
    client: TestClient, auth: dict[str, str], manual_clock: Any
) -> None:
    created = await create_upload(client, auth)
    key = auth["Authorization"].split()[1]
    resp = await client.post(
        path_of(created["tusEndpoint"]), headers={**TUS, "Upload-Length": str(len(DATA))}
    )
    location = path_of(resp.headers["Location"])
    expires_ms = manual_clock.now_ms(key) + EXPIRES_AFTER_MS
    from email.utils import parsedate_to_datetime

    stamped = parsedate_to_datetime(resp.headers["Upload-Expires"]).timestamp() * 1000
    assert stamped == expires_ms // 1000 * 1000
    assert (await tus_patch(client, location, 0, DATA[:4096])).status == 204

    await advance(client, auth, EXPIRES_AFTER_MS / 1000 - 1)
    head = await client.head(location, headers=TUS)
    assert (head.status, head.headers["Upload-Offset"]) == (200, "4096")

    await advance(client, auth, 1)
    assert partial_files(client) == []
    assert (await client.head(location, headers=TUS)).status == 404
    assert await uploads(client).store.tus_uploads() == []
    asset, task = await asset_and_task(client, auth, created)
    assert (asset["status"]["phase"], task["status"]["phase"]) == ("uploading", "pending")


async def test_reset_forgets_the_tenants_uploads(client: TestClient, auth: dict[str, str]) -> None:
    created = await create_upload(client, auth)
    location = await tus_create(client, created)
    assert (await tus_patch(client, location, 0, DATA[:100])).status == 204
    resp = await client.post("/_emulator/reset", json={}, headers=auth)
    assert resp.status == 200
    assert partial_files(client) == []
    assert (await client.head(location, headers=TUS)).status == 404


async def test_racing_patches_one_wins_and_bytes_never_interleave(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    length = 4 * 256 * 1024
    location = await tus_create(client, created, length=length)
    tus = uploads(client)

    # Let the test know once the first PATCH has bytes on disk (it then holds the upload).
    first_written = asyncio.Event()
    real_receive = tus._receive

    async def observed(row, body, content_length):  # type: ignore[no-untyped-def]
        async def tap() -> AsyncIterator[bytes]:
            async for chunk in body:
                yield chunk
                first_written.set()

        return await real_receive(row, tap(), content_length)

    tus._receive = observed  # type: ignore[method-assign]
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"A" * (length // 2)
        await release.wait()
        yield b"A" * (length // 2)

    first = asyncio.create_task(
        client.patch(
            location,
            data=slow_body(),
            headers={**OCTET, "Upload-Offset": "0", "Content-Length": str(length)},
        )
    )
    await first_written.wait()
    second = await tus_patch(client, location, 0, b"B" * length)
    assert second.status == 423, await second.text()
    release.set()
    first_resp = await first
    assert first_resp.status == 204, await first_resp.text()
    # Late and stale: the offset moved on.
    late = await tus_patch(client, location, 0, b"B" * length)
    assert late.status == 409
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "waiting"
    stored = Path(tus.blobs.media_path(created["asset"]["id"])).read_bytes()
    assert stored == b"A" * length


async def test_cors_lets_a_browser_client_read_the_tus_headers(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    origin = {"Origin": "http://app.example"}
    preflight = await client.options(
        path_of(created["tusEndpoint"]),
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "tus-resumable,upload-length,upload-metadata",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == (
        "tus-resumable,upload-length,upload-metadata"
    )
    resp = await client.post(
        path_of(created["tusEndpoint"]),
        headers={**TUS, **origin, "Upload-Length": str(len(DATA))},
    )
    assert resp.status == 201
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert {
        "location",
        "upload-offset",
        "upload-length",
        "upload-expires",
        "tus-resumable",
        "tus-version",
        "tus-extension",
        "tus-max-size",
    } <= exposed
    location = path_of(resp.headers["Location"])
    preflight = await client.options(
        location,
        headers={
            **origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "content-type,tus-resumable,upload-offset",
        },
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
    for request in (
        client.head(location, headers={**TUS, **origin}),
        tus_patch(client, location, 0, DATA[:10], **origin),
        tus_patch(client, location, 0, DATA[:10], **origin),  # a 409 is readable too
    ):
        resp = await request
        assert resp.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert "Upload-Offset" in resp.headers["Access-Control-Expose-Headers"]


async def test_a_streamed_body_stops_at_upload_length(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Without a Content-Length (chunked), the bytes within the length are kept, not more."""
    created = await create_upload(client, auth)
    location = await tus_create(client, created, length=300 * 1024)

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * (100 * 1024)

    resp = await client.patch(location, data=chunked(), headers={**OCTET, "Upload-Offset": "0"})
    assert (resp.status, await resp.text()) == (413, "Maximum size exceeded")
    head = await client.head(location, headers=TUS)
    offset = int(head.headers["Upload-Offset"])
    assert 0 < offset < 300 * 1024
    [partial] = partial_files(client)
    assert partial.read_bytes() == b"x" * offset
    asset, _ = await asset_and_task(client, auth, created)
    assert asset["status"]["phase"] == "uploading"


async def test_an_asset_deleted_mid_upload_refuses_the_last_byte(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await create_upload(client, auth)
    location = await tus_create(client, created)
    assert (await tus_patch(client, location, 0, DATA[:100])).status == 204
    resp = await client.delete(f"/api/asset/{created['asset']['id']}", headers=auth)
    assert resp.status == 204
    resp = await tus_patch(client, location, 100, DATA[100:])
    assert resp.status == 404
    assert await resp.json() == {"errors": ["Asset not found"]}
    assert partial_files(client) == []
    assert (await client.head(location, headers=TUS)).status == 404


class SteppedClock:
    """A real-mode clock (the scheduler's loop runs) whose time the test moves; each of the
    loop's timed waits ends when the test ticks (or something wakes the loop)."""

    manual = False

    def __init__(self, now_ms: int) -> None:
        self.now = now_ms
        self.tick = asyncio.Event()  # set by the test: the loop's wait ends
        self.waiting = asyncio.Event()  # set when the loop starts a timed wait

    def now_ms(self, tenant: str | None = None) -> int:
        return self.now

    async def wait(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        self.waiting.set()
        ends = [asyncio.ensure_future(self.tick.wait())]
        if wake is not None:
            ends.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for end in ends:
                end.cancel()
        self.tick.clear()


async def test_the_scheduler_expires_uploads_on_the_real_clock(  # type: ignore[no-untyped-def]
    aiohttp_client, tmp_path: Path
) -> None:
    from emulator.app import create_app
    from emulator.settings import Settings

    clock = SteppedClock(1_700_000_000_000)
    app = create_app(Settings(data_dir=tmp_path / "data"), clock=clock)  # type: ignore[arg-type]
    client = await aiohttp_client(app)
    auth = {"Authorization": "Bearer sweeper"}
    created = await create_upload(client, auth)
    location = await tus_create(client, created)
    assert (await tus_patch(client, location, 0, DATA[:100])).status == 204
    await clock.waiting.wait()  # the scheduler waits for the upload's expiry

    clock.now += EXPIRES_AFTER_MS - 1
    clock.waiting.clear()
    clock.tick.set()
    await clock.waiting.wait()  # one pass done: not yet expired
    assert len(partial_files(client)) == 1

    clock.now += 1
    clock.waiting.clear()
    clock.tick.set()
    await clock.waiting.wait()
    assert partial_files(client) == []
    assert await uploads(client).store.tus_uploads() == []
    assert (await client.head(location, headers=TUS)).status == 404
