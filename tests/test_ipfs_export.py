"""IPFS export (emulator/exports.py, routes/ipfs.py), as Studio does it.

Studio sources (livepeer/studio packages/api/src): controllers/asset.ts
`storageInputToState`, `reconcileAssetStorage`, `toExternalAsset`/`withIpfsUrls`;
task/scheduler.ts `createTask`, `scheduleTask`, `processTaskEvent` (case "export"),
`failTask`, `updateAsset`; controllers/task.ts `POST /:id/status` and `taskWithIpfsUrls`;
controllers/playback.ts `getResourceByPlaybackId` with store/asset-table.ts
`getByIpfsCid`/`findFirstReady`. The pinned file and NFT metadata: livepeer/task-runner
task/export.go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.cid import bytes_cid, file_cid
from emulator.exports import LIVEPEER_LOGO_URL
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, get_json, path_of, upload
from tests.test_url_import import file_server
from tests.test_webhooks import Receiver, make_webhook
from tests.test_webhooks import receiver as webhook_receiver

hooks = webhook_receiver  # test_webhooks' receiver fixture, under this module's name

SAMPLE_CID = file_cid(SAMPLE_MP4)


async def ready_asset(client: TestClient, auth: dict[str, str], name: str = "clip") -> Any:
    created = await upload(client, auth, SAMPLE_MP4, name)
    await advance(client, auth, 30)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "ready"
    return asset


async def patch(client: TestClient, auth: dict[str, str], asset_id: str, body: Any) -> Any:
    resp = await client.patch(f"/api/asset/{asset_id}", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def origin_of(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


async def test_patch_starts_an_export_task_and_answers_waiting(
    client: TestClient, auth: dict[str, str]
) -> None:
    """asset.ts reconcileAssetStorage + scheduler.ts createTask/scheduleTask."""
    asset = await ready_asset(client, auth)
    patched = await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    storage = patched["storage"]
    assert storage["ipfs"] == {"spec": {}}
    assert storage["status"]["phase"] == "waiting"
    task_id = storage["status"]["tasks"]["pending"]
    assert set(storage["status"]) == {"phase", "tasks"}
    task = await get_json(client, f"/api/task/{task_id}", auth)
    assert task["type"] == "export"
    assert task["inputAssetId"] == asset["id"]
    assert "outputAssetId" not in task
    assert task["params"] == {"export": {"ipfs": {}}}
    assert task["status"]["phase"] == "waiting"
    assert task["scheduledAt"] == task["createdAt"]


async def test_export_completes_with_the_files_real_cid(
    client: TestClient, auth: dict[str, str]
) -> None:
    """scheduler.ts processTaskEvent "export": storage.ipfs.{cid, nftMetadata, updatedAt}
    and status ready with tasks.last; the URLs added on the way out (withIpfsUrls)."""
    asset = await ready_asset(client, auth)
    patched = await patch(client, auth, asset["id"], {"storage": {"ipfs": {}}})
    task_id = patched["storage"]["status"]["tasks"]["pending"]
    await advance(client, auth, 30)
    done = await get_json(client, f"/api/asset/{asset['id']}", auth)
    ipfs = done["storage"]["ipfs"]
    base = origin_of(client)
    assert ipfs["cid"] == SAMPLE_CID
    # The sample is one chunk (< 256 KiB): its CID is the raw leaf's.
    assert SAMPLE_MP4.stat().st_size <= 256 * 1024 and SAMPLE_CID.startswith("bafkrei")
    assert ipfs["url"] == f"ipfs://{SAMPLE_CID}"
    assert ipfs["gatewayUrl"] == f"{base}/ipfs/{SAMPLE_CID}"
    assert ipfs["spec"] == {}
    assert isinstance(ipfs["updatedAt"], int)
    nft = ipfs["nftMetadata"]
    assert nft["url"] == f"ipfs://{nft['cid']}"
    assert nft["gatewayUrl"] == f"{base}/ipfs/{nft['cid']}"
    assert done["storage"]["status"] == {"phase": "ready", "tasks": {"last": task_id}}
    assert done["status"]["phase"] == "ready"  # the asset's own phase never moves

    task = await get_json(client, f"/api/task/{task_id}", auth)
    assert task["status"] == {"phase": "completed", "updatedAt": task["status"]["updatedAt"]}
    assert task["output"]["export"]["ipfs"] == {
        "videoFileCid": SAMPLE_CID,
        "videoFileUrl": f"ipfs://{SAMPLE_CID}",
        "videoFileGatewayUrl": f"{base}/ipfs/{SAMPLE_CID}",
        "nftMetadataCid": nft["cid"],
        "nftMetadataUrl": f"ipfs://{nft['cid']}",
        "nftMetadataGatewayUrl": f"{base}/ipfs/{nft['cid']}",
    }
    # The same spec again changes nothing: no new task.
    again = await patch(client, auth, asset["id"], {"storage": {"ipfs": {"spec": {}}}})
    assert again["storage"]["status"] == {"phase": "ready", "tasks": {"last": task_id}}


async def test_progress_shows_in_storage_status(client: TestClient, auth: dict[str, str]) -> None:
    """task.ts POST /:id/status: the pending export's progress on storage.status."""
    asset = await ready_asset(client, auth)
    await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    await advance(client, auth, 0.5)  # the default queue time: the task starts
    running = await get_json(client, f"/api/asset/{asset['id']}", auth)
    assert running["storage"]["status"]["phase"] == "processing"
    assert running["storage"]["status"]["progress"] == 0
    assert "pending" in running["storage"]["status"]["tasks"]


async def test_removing_ipfs_is_refused(client: TestClient, auth: dict[str, str]) -> None:
    asset = await ready_asset(client, auth)
    await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    resp = await client.patch(
        f"/api/asset/{asset['id']}", json={"storage": {"ipfs": False}}, headers=auth
    )
    assert resp.status == 400
    assert await resp.json() == {"errors": ["Cannot remove asset from IPFS"]}


async def test_gateway_serves_the_bytes_with_range_head_and_cors(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await ready_asset(client, auth)
    await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    await advance(client, auth, 30)
    path = f"/ipfs/{SAMPLE_CID}"
    got = await client.get(path)  # no key: a gateway is public
    assert got.status == 200
    assert await got.read() == SAMPLE_MP4.read_bytes()
    assert got.headers["Content-Type"] == "video/mp4"
    assert "immutable" in got.headers["Cache-Control"]
    part = await client.get(path, headers={"Range": "bytes=10-19"})
    assert part.status == 206
    assert await part.read() == SAMPLE_MP4.read_bytes()[10:20]
    head = await client.head(path)
    assert head.status == 200
    assert int(head.headers["Content-Length"]) == SAMPLE_MP4.stat().st_size
    cors = await client.get(path, headers={"Origin": "https://app.example"})
    assert cors.headers["Access-Control-Allow-Origin"] == "https://app.example"
    unknown = await client.get(f"/ipfs/{bytes_cid(b'never exported')}")
    assert unknown.status == 404
    assert await unknown.json() == {"errors": ["not found"]}
    # Once the asset is deleted its CIDs are gone from the gateway.
    assert (await client.delete(f"/api/asset/{asset['id']}", headers=auth)).status == 204
    assert (await client.get(path)).status == 404


async def test_nft_metadata_follows_the_spec(client: TestClient, auth: dict[str, str]) -> None:
    """task-runner export.go nftMetadata + mergeJson: the template, deep-merged with
    spec.nftMetadata (null deletes a key); pinned with its own CID."""
    asset = await ready_asset(client, auth, name="my <clip>")
    spec = {
        "nftMetadataTemplate": "player",
        "nftMetadata": {"image": None, "properties": {"artist": "me"}, "extra": 1},
    }
    await patch(client, auth, asset["id"], {"storage": {"ipfs": {"spec": spec}}})
    await advance(client, auth, 30)
    done = await get_json(client, f"/api/asset/{asset['id']}", auth)
    nft = done["storage"]["ipfs"]["nftMetadata"]
    resp = await client.get(f"/ipfs/{nft['cid']}")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    raw = await resp.read()
    assert bytes_cid(raw) == nft["cid"]
    assert b"\\u003cclip\\u003e" in raw  # Go's json.Marshal escapes < and >
    metadata = json.loads(raw)
    assert metadata == {
        "name": "my <clip>",
        "description": 'Livepeer video from asset "my <clip>"',
        "animation_url": (
            "ipfs://bafybeihza7ss7ebsxqud4kcqjizygkv2uyfixfqlwl6cboavj2anvlfn3i/"
            f"?loop=1&v={SAMPLE_CID}"
        ),
        "external_url": f"https://lvpr.tv/?v={SAMPLE_CID}",
        "properties": {
            "video": f"ipfs://{SAMPLE_CID}",
            "com.livepeer.playbackId": asset["playbackId"],
            "artist": "me",
        },
        "extra": 1,
    }
    part = await client.get(f"/ipfs/{nft['cid']}", headers={"Range": "bytes=0-0"})
    assert part.status == 206 and await part.read() == b"{"


async def test_file_template_metadata(client: TestClient, auth: dict[str, str]) -> None:
    asset = await ready_asset(client, auth, name="clip")
    await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    await advance(client, auth, 30)
    done = await get_json(client, f"/api/asset/{asset['id']}", auth)
    raw = await (await client.get(f"/ipfs/{done['storage']['ipfs']['nftMetadata']['cid']}")).read()
    assert json.loads(raw) == {
        "name": "clip",
        "description": 'Livepeer video from asset "clip"',
        "image": LIVEPEER_LOGO_URL,
        "animation_url": f"ipfs://{SAMPLE_CID}",
    }


async def test_playback_info_by_cid_for_the_owner_only(
    client: TestClient, auth: dict[str, str]
) -> None:
    """playback.ts getResourceByPlaybackId → getByIpfsCid (findFirstReady): the caller's
    own asset; another account's only if made before 2023-06-06, or from lvpr.tv."""
    asset = await ready_asset(client, auth)
    await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    await advance(client, auth, 30)
    by_id = await get_json(client, f"/api/playback/{asset['playbackId']}", auth)
    by_cid = await get_json(client, f"/api/playback/{SAMPLE_CID}", auth)
    assert by_cid == by_id
    other = {"Authorization": "Bearer someone-else"}
    for headers in (other, {}):
        resp = await client.get(f"/api/playback/{SAMPLE_CID}", headers=headers)
        assert resp.status == 404
        assert await resp.json() == {"errors": [f"No playback URL found for {SAMPLE_CID}"]}
    player = await client.get(f"/api/playback/{SAMPLE_CID}", headers={"Origin": "https://lvpr.tv"})
    assert player.status == 200


async def test_export_fault_fails_the_task_and_the_storage_status(
    client: TestClient, auth: dict[str, str], hooks: Receiver
) -> None:
    """A scenario's `export:` rule; scheduler.ts failTask: task failed first, then the
    asset's storage.status failed with errorMessage and tasks.failed."""
    scenario = {"faults": [{"match": {"asset_name": "nopin-*"}, "export": {"error": "pin down"}}]}
    resp = await client.put("/_emulator/scenario", json=scenario, headers=auth)
    assert resp.status == 200, await resp.text()
    asset = await ready_asset(client, auth, name="nopin-1")
    await make_webhook(client, auth, hooks.url)
    patched = await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    task_id = patched["storage"]["status"]["tasks"]["pending"]
    await advance(client, auth, 30)
    done = await get_json(client, f"/api/asset/{asset['id']}", auth)
    assert done["storage"]["status"] == {
        "phase": "failed",
        "errorMessage": "pin down",
        "tasks": {"failed": task_id},
    }
    assert "cid" not in done["storage"]["ipfs"]
    task = await get_json(client, f"/api/task/{task_id}", auth)
    assert task["status"]["phase"] == "failed"
    assert task["status"]["errorMessage"] == "pin down"
    await hooks.wait_for(8)
    assert hooks.events == [
        "task.spawned",
        "task.updated",
        "asset.updated",  # the PATCH
        "task.updated",
        "asset.updated",  # started
        "task.updated",
        "task.failed",
        "asset.updated",  # failTask: the task first, then the asset
    ]


async def test_webhooks_of_a_successful_export(
    client: TestClient, auth: dict[str, str], hooks: Receiver
) -> None:
    """processTaskEvent: the asset's asset.updated before the task's events; a task event
    for an export carries the gateway URLs (toExternalTask)."""
    asset = await ready_asset(client, auth)
    await make_webhook(client, auth, hooks.url)
    await patch(client, auth, asset["id"], {"storage": {"ipfs": True}})
    await advance(client, auth, 30)
    progress = ["task.updated", "asset.updated"] * 4  # start + 3 progress reports
    expected = [
        "task.spawned",
        "task.updated",
        "asset.updated",
        *progress,
        "asset.updated",
        "task.updated",
        "task.completed",
    ]
    await hooks.wait_for(len(expected))
    assert hooks.events == expected
    spawned = hooks.got[0].body["payload"]["task"]
    assert spawned["type"] == "export"
    assert spawned["snapshot"]["status"]["phase"] == "pending"
    completed = hooks.got[-1].body["payload"]
    assert completed["success"] is True
    exported = completed["task"]["snapshot"]["output"]["export"]["ipfs"]
    assert exported["videoFileGatewayUrl"].endswith(f"/ipfs/{SAMPLE_CID}")
    ready = hooks.got[-3].body["payload"]["asset"]["snapshot"]
    assert ready["storage"]["ipfs"]["url"] == f"ipfs://{SAMPLE_CID}"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"export": {}}, "faults[0].export needs error"),
        ({"match": {"method": "GET"}, "export": {"error": "x"}}, "only applies to HTTP"),
        ({"export": {"error": "x"}, "processing": {"fail_times": 1}}, "go in separate rules"),
    ],
)
async def test_bad_export_rules_are_refused(
    client: TestClient, auth: dict[str, str], rule: dict[str, Any], problem: str
) -> None:
    resp = await client.put("/_emulator/scenario", json={"faults": [rule]}, headers=auth)
    assert resp.status == 400
    assert problem in json.dumps(await resp.json())


# -- storage on create: the upload task pins the file itself ---------------------------


async def test_request_upload_with_storage_is_pinned_by_the_upload_task(
    client: TestClient, auth: dict[str, str], hooks: Receiver
) -> None:
    """asset.ts validateAssetPayload → storageInputToState keeps only the spec; the upload
    task pins the file (task-runner), and scheduler.ts processTaskEvent ("upload") writes
    `{...assetSpec.storage, status: {phase: "ready", tasks: {last: <upload task>}}}`,
    in the update that makes the asset ready (asset.updated, asset.ready carry it)."""
    await make_webhook(client, auth, hooks.url)
    body = {"name": "pinned", "storage": {"ipfs": True}}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    created = await resp.json()
    asset_id, task_id = created["asset"]["id"], created["task"]["id"]
    assert created["asset"]["storage"] == {"ipfs": {"spec": {}}}
    put = await client.put(path_of(created["url"]), data=SAMPLE_MP4.read_bytes())
    assert put.status == 200, await put.text()
    await advance(client, auth, 30)

    done = await get_json(client, f"/api/asset/{asset_id}", auth)
    assert done["status"]["phase"] == "ready"
    storage = done["storage"]
    assert storage["status"] == {"phase": "ready", "tasks": {"last": task_id}}
    ipfs = storage["ipfs"]
    assert ipfs["spec"] == {}
    assert ipfs["cid"] == SAMPLE_CID
    base = origin_of(client)
    assert ipfs["url"] == f"ipfs://{SAMPLE_CID}"
    assert ipfs["gatewayUrl"] == f"{base}/ipfs/{SAMPLE_CID}"
    metadata_cid = ipfs["nftMetadata"]["cid"]
    assert ipfs["nftMetadata"]["gatewayUrl"] == f"{base}/ipfs/{metadata_cid}"

    # One update makes the asset ready with its storage: asset.updated, asset.ready, then
    # the task's events; no export task is spawned.
    await hooks.wait_for(17)
    assert hooks.events.count("task.spawned") == 1
    assert hooks.events[-4:] == ["asset.updated", "asset.ready", "task.updated", "task.completed"]
    for got in hooks.got[-4:-2]:
        snapshot = got.body["payload"]["asset"]["snapshot"]
        assert snapshot["storage"]["ipfs"]["cid"] == SAMPLE_CID
        assert snapshot["storage"]["ipfs"]["gatewayUrl"] == f"{base}/ipfs/{SAMPLE_CID}"
        assert snapshot["storage"]["status"] == {"phase": "ready", "tasks": {"last": task_id}}
    before = hooks.got[-5].body["payload"]["asset"]["snapshot"]  # the last progress report
    assert before["storage"] == {"ipfs": {"spec": {}}}

    # The upload task reports what it pinned; no export task was made.
    task = await get_json(client, f"/api/task/{task_id}", auth)
    assert task["output"]["upload"]["assetSpec"]["storage"] == {
        "ipfs": {"spec": {}, "cid": SAMPLE_CID, "nftMetadata": {"cid": metadata_cid}}
    }
    tasks = await get_json(client, "/api/task", auth)
    assert [t["type"] for t in tasks] == ["upload"]

    # The gateway serves both files; playback info resolves the CID.
    got = await client.get(f"/ipfs/{SAMPLE_CID}")
    assert got.status == 200
    assert await got.read() == SAMPLE_MP4.read_bytes()
    raw = await (await client.get(f"/ipfs/{metadata_cid}")).read()
    assert bytes_cid(raw) == metadata_cid
    assert json.loads(raw)["animation_url"] == f"ipfs://{SAMPLE_CID}"
    by_id = await get_json(client, f"/api/playback/{done['playbackId']}", auth)
    assert await get_json(client, f"/api/playback/{SAMPLE_CID}", auth) == by_id

    # The same spec again starts no export.
    again = await patch(client, auth, asset_id, {"storage": {"ipfs": {"spec": {}}}})
    assert again["storage"]["status"] == {"phase": "ready", "tasks": {"last": task_id}}


async def test_upload_url_with_a_storage_spec_is_pinned_by_the_upload_task(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    """Studio's upload/url: the same as request-upload (storageInputToState, then the
    upload task's assetSpec.storage); the NFT metadata follows the spec's template."""
    server = await file_server(aiohttp_server)
    spec = {"nftMetadataTemplate": "player", "nftMetadata": {"extra": 1}}
    body = {
        "name": "imported",
        "url": str(server.make_url("/clip.mp4")),
        "storage": {"ipfs": {"spec": spec}},
    }
    resp = await client.post("/api/asset/upload/url", json=body, headers=auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    asset_id, task_id = created["asset"]["id"], created["task"]["id"]
    await advance(client, auth, 30)
    done = await get_json(client, f"/api/asset/{asset_id}", auth)
    assert done["status"]["phase"] == "ready"
    assert done["storage"]["status"] == {"phase": "ready", "tasks": {"last": task_id}}
    assert done["storage"]["ipfs"]["spec"] == spec
    assert done["storage"]["ipfs"]["cid"] == SAMPLE_CID
    raw = await (await client.get(f"/ipfs/{done['storage']['ipfs']['nftMetadata']['cid']}")).read()
    metadata = json.loads(raw)
    assert metadata["extra"] == 1
    assert metadata["properties"]["com.livepeer.playbackId"] == done["playbackId"]
    assert (await client.get(f"/ipfs/{SAMPLE_CID}")).status == 200
