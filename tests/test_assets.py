"""The Assets API in-process: shapes, phases on the manual clock, updates, deletes."""

from __future__ import annotations

import re
import uuid

from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.settings import Settings
from tests.conftest import FIXTURES, NOT_MEDIA, SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, path_of, upload

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
START = 1_700_000_000_000  # the manual clock's start in conftest


async def test_request_upload_answers_studio_shape(client: TestClient, auth) -> None:
    resp = await client.post(
        "/api/asset/request-upload",
        json={"name": "clip.mp4", "staticMp4": True, "creatorId": "me", "c2pa": False},
        headers=auth,
    )
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"url", "tusEndpoint", "asset", "task"}
    root = str(client.make_url(""))
    assert body["url"].startswith(f"{root}/api/asset/upload/direct?token=")
    assert body["tusEndpoint"].startswith(f"{root}/api/asset/upload/tus?token=")
    assert body["url"].split("token=")[1] == body["tusEndpoint"].split("token=")[1]
    asset = body["asset"]
    assert UUID4.match(asset["id"])
    assert re.fullmatch(r"[0-9a-z]{16}", asset["playbackId"])
    assert asset["playbackId"][:4] == asset["id"][:4]
    assert asset["status"] == {"phase": "uploading", "updatedAt": START}
    assert asset["source"] == {"type": "directUpload"}
    assert asset["creatorId"] == {"type": "unverified", "value": "me"}
    assert asset["createdAt"] == START
    # Write-only fields are accepted but never returned; no URLs before the asset is ready.
    for absent in ("staticMp4", "c2pa", "playbackUrl", "downloadUrl", "videoSpec"):
        assert absent not in asset
    assert None not in asset.values()
    task = await get_json(client, f"/api/task/{body['task']['id']}", auth)
    assert task["type"] == "upload"
    assert task["outputAssetId"] == asset["id"]
    assert task["status"] == {"phase": "pending", "updatedAt": START}


async def test_phases_follow_the_manual_clock_step_by_step(client: TestClient, auth) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    asset_path = f"/api/asset/{created['asset']['id']}"
    task_path = f"/api/task/{created['task']['id']}"

    asset = await get_json(client, asset_path, auth)
    task = await get_json(client, task_path, auth)
    assert asset["status"] == {"phase": "waiting", "updatedAt": START}
    assert task["status"] == {"phase": "waiting", "updatedAt": START, "retries": 0}
    assert task["scheduledAt"] == START

    # Default timeline: 0.5 s queue, then 3 s of processing reported at 0, .25, .5, .75.
    seen = []
    for _ in range(5):
        await advance(client, auth, 0.5 if not seen else 0.75)
        asset = await get_json(client, asset_path, auth)
        task = await get_json(client, task_path, auth)
        seen.append(
            (
                asset["status"]["phase"],
                asset["status"].get("progress"),
                task["status"]["phase"],
                asset["status"]["updatedAt"] - START,
            )
        )
    assert seen == [
        ("processing", 0, "running", 500),
        ("processing", 0.25, "running", 1250),
        ("processing", 0.5, "running", 2000),
        ("processing", 0.75, "running", 2750),
        ("ready", None, "completed", 3500),
    ]
    assert asset["size"] == SAMPLE_MP4.stat().st_size
    assert [h["algorithm"] for h in asset["hash"]] == ["md5", "sha256"]
    assert asset["type"] == "video"
    assert asset["videoSpec"]["format"] == "mp4"
    assert asset["videoSpec"]["duration"] == 2.0
    assert "tracks" not in asset["videoSpec"]  # only with ?details
    root = str(client.make_url(""))
    assert asset["playbackUrl"] == f"{root}/hls/{asset['playbackId']}/index.m3u8"
    assert asset["downloadUrl"] == f"{root}/asset/{asset['playbackId']}/video/download.mp4"
    detailed = await get_json(client, asset_path + "?details=1", auth)
    video, audio = detailed["videoSpec"]["tracks"]
    assert (video["type"], video["codec"], video["width"], video["height"]) == (
        "video",
        "h264",
        320,
        240,
    )
    assert video["fps"] == 25 and video["pixelFormat"] == "yuv420p"
    assert (audio["type"], audio["codec"], audio["sampleRate"]) == ("audio", "aac", 44100)
    assert task["output"]["upload"]["assetSpec"]["videoSpec"]["duration"] == 2.0


async def test_webm_and_audio_only_files_get_their_own_spec(client: TestClient, auth) -> None:
    webm = await upload(client, auth, FIXTURES / "sample-640x360.webm")
    tone = await upload(client, auth, FIXTURES / "tone.m4a")
    await advance(client, auth, 10)
    a = await get_json(client, f"/api/asset/{webm['asset']['id']}?details=1", auth)
    assert a["videoSpec"]["format"] == "webm"
    assert (a["videoSpec"]["tracks"][0]["width"], a["videoSpec"]["tracks"][0]["height"]) == (
        640,
        360,
    )
    b = await get_json(client, f"/api/asset/{tone['asset']['id']}?details=1", auth)
    assert b["type"] == "audio"
    assert b["videoSpec"]["tracks"][0]["channels"] == 2


async def test_non_media_upload_fails_with_error_message(client: TestClient, auth) -> None:
    created = await upload(client, auth, NOT_MEDIA)
    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    assert asset["status"]["phase"] == "failed"
    assert asset["status"]["errorMessage"].startswith("Failed to probe file: Invalid data")
    assert task["status"]["phase"] == "failed"
    assert task["status"]["errorMessage"] == asset["status"]["errorMessage"]
    assert "playbackUrl" not in asset and "videoSpec" not in asset


async def test_truncated_upload_fails_instead_of_becoming_ready(
    client: TestClient, auth, tmp_path
) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(SAMPLE_MP4.read_bytes()[:10_000])
    created = await upload(client, auth, cut)
    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "failed"
    assert "partial file" in asset["status"]["errorMessage"]


async def test_direct_upload_token_errors(client: TestClient, auth) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    again = await client.put(path_of(created["url"]), data=b"more")
    assert again.status == 422
    assert await again.json() == {"errors": ["asset has already been uploaded"]}
    token = created["url"].split("token=")[1]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    bad = await client.put(f"/api/asset/upload/direct?token={forged}", data=b"x")
    assert bad.status == 403
    assert await bad.json() == {"errors": ["Invalid signed upload URL: invalid signature"]}
    missing = await client.put("/api/asset/upload/direct", data=b"x")
    assert missing.status == 403
    assert await missing.json() == {"errors": ["Invalid signed upload URL: jwt must be provided"]}
    garbage = await client.put("/api/asset/upload/direct?token=abc", data=b"x")
    assert await garbage.json() == {"errors": ["Invalid signed upload URL: jwt malformed"]}


async def test_upload_to_a_deleted_asset_is_404(client: TestClient, auth) -> None:
    created = await create_upload(client, auth)
    deleted = await client.delete(f"/api/asset/{created['asset']['id']}", headers=auth)
    assert deleted.status == 204
    put = await client.put(path_of(created["url"]), data=SAMPLE_MP4.read_bytes())
    assert put.status == 404
    assert await put.json() == {"errors": ["Asset not found"]}


async def test_patch_renames_ready_asset_and_refuses_others(client: TestClient, auth) -> None:
    waiting = await create_upload(client, auth, "not yet")
    resp = await client.patch(
        f"/api/asset/{waiting['asset']['id']}", json={"name": "x"}, headers=auth
    )
    assert resp.status == 422
    assert await resp.json() == {"errors": ["asset is not ready"]}

    created = await upload(client, auth, SAMPLE_MP4, "before")
    await advance(client, auth, 10)
    path = f"/api/asset/{created['asset']['id']}"
    resp = await client.patch(
        path,
        json={"name": "after", "creatorId": "alice", "playbackPolicy": {"type": "public"}},
        headers=auth,
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["name"] == "after"
    assert body["creatorId"] == {"type": "unverified", "value": "alice"}
    assert body["playbackPolicy"] == {"type": "public"}
    assert body["status"]["phase"] == "ready"
    assert (await get_json(client, path, auth))["name"] == "after"

    private = await client.patch(path, json={"playbackPolicy": {"type": "jwt"}}, headers=auth)
    assert private.status == 422
    assert await private.json() == {
        "errors": ["cannot update playback policy from private to public or vice versa"]
    }
    unknown = await client.patch(f"/api/asset/{uuid.uuid4()}", json={"name": "x"}, headers=auth)
    assert unknown.status == 404
    assert await unknown.json() == {"errors": ["asset not found"]}


async def test_delete_answers_204_then_asset_is_gone(client: TestClient, auth, tmp_path) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 10)
    asset_id = created["asset"]["id"]
    media = list((tmp_path / "data" / "media").glob(f"{asset_id}/*"))
    assert media, "the upload is on disk before the delete"
    resp = await client.delete(f"/api/asset/{asset_id}", headers=auth)
    assert resp.status == 204
    assert await resp.read() == b""
    gone = await client.get(f"/api/asset/{asset_id}", headers=auth)
    assert gone.status == 404
    assert await gone.json() == {"errors": ["Asset not found"]}
    assert await get_json(client, "/api/asset", auth) == []
    again = await client.delete(f"/api/asset/{asset_id}", headers=auth)
    assert again.status == 400  # Studio: asset.ts app.delete("/:id")
    assert await again.json() == {"errors": ["asset is already deleted"]}
    assert not any(p.exists() for p in media)


async def test_playback_info_and_media_without_outputs(aiohttp_client, tmp_path, auth) -> None:
    """`--outputs none`: the uploaded file stands in for the MP4 rendition and for HLS (the
    outputs themselves: tests/test_outputs.py)."""
    settings = Settings(data_dir=tmp_path / "data", clock="manual", outputs="none")
    client = await aiohttp_client(create_app(settings, clock=ManualClock()))
    created = await upload(client, auth, SAMPLE_MP4)
    pid = created["asset"]["playbackId"]
    early = await client.get(f"/api/playback/{pid}", headers=auth)
    assert early.status == 422
    assert await early.json() == {"errors": ["asset is not ready for playback"]}
    await advance(client, auth, 10)
    info = await get_json(client, f"/api/playback/{pid}", {})  # no API key needed
    assert info["type"] == "vod"
    assert info["meta"]["playbackPolicy"] is None
    mp4, hls = info["meta"]["source"]
    assert (mp4["hrn"], mp4["type"], mp4["width"], mp4["height"]) == (
        "MP4",
        "html5/video/mp4",
        320,
        240,
    )
    assert mp4["size"] == SAMPLE_MP4.stat().st_size
    assert (hls["hrn"], hls["type"]) == ("HLS (TS)", "html5/application/vnd.apple.mpegurl")
    media = await client.get(path_of(mp4["url"]))
    assert media.status == 200
    assert media.headers["Content-Type"] == "video/mp4"
    assert await media.read() == SAMPLE_MP4.read_bytes()
    ranged = await client.get(path_of(hls["url"]), headers={"Range": "bytes=0-99"})
    assert ranged.status == 206
    assert await ranged.read() == SAMPLE_MP4.read_bytes()[:100]
    unknown = await client.get("/api/playback/abcd1234abcd1234", headers=auth)
    assert unknown.status == 404
    assert await unknown.json() == {"errors": ["No playback URL found for abcd1234abcd1234"]}


async def test_reset_empties_one_tenant_or_all(client: TestClient, auth) -> None:
    other = {"Authorization": "Bearer someone-else"}
    mine = await create_upload(client, auth)
    theirs = await create_upload(client, other)
    resp = await client.post("/_emulator/reset", headers=auth)
    assert resp.status == 200
    assert await get_json(client, "/api/asset", auth) == []
    assert [a["id"] for a in await get_json(client, "/api/asset", other)] == [theirs["asset"]["id"]]
    assert (await client.get(f"/api/task/{mine['task']['id']}", headers=auth)).status == 404
    anonymous = await client.post("/_emulator/reset")
    assert anonymous.status == 400
    everything = await client.post("/_emulator/reset", json={"all": True})
    assert everything.status == 200
    assert await get_json(client, "/api/asset", other) == []


async def test_clock_endpoints(client: TestClient, auth) -> None:
    assert await get_json(client, "/_emulator/clock", auth) == {"mode": "manual", "now": START}
    moved = await advance(client, auth, 2.5)
    assert moved == {"now": START + 2500, "applied": 0}
    # Each tenant has its own time; a keyless advance moves everyone.
    other = await get_json(client, "/_emulator/clock", {"Authorization": "Bearer other"})
    assert other["now"] == START
    await client.post("/_emulator/clock/advance", json={"seconds": 1})
    assert (await get_json(client, "/_emulator/clock", auth))["now"] == START + 3500
    bad = await client.post("/_emulator/clock/advance", json={"seconds": -1}, headers=auth)
    assert bad.status == 422


async def test_tenant_clocks_are_independent(client: TestClient, auth) -> None:
    other = {"Authorization": "Bearer other-tenant"}
    mine = await upload(client, auth, SAMPLE_MP4)
    theirs = await upload(client, other, SAMPLE_MP4)
    await advance(client, auth, 10)
    assert (await get_json(client, f"/api/asset/{mine['asset']['id']}", auth))["status"][
        "phase"
    ] == "ready"
    assert (await get_json(client, f"/api/asset/{theirs['asset']['id']}", other))["status"][
        "phase"
    ] == "waiting"
