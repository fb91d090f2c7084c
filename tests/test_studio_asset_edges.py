"""Studio-exact edges of the asset and task use cases (issue 14, items 2, 4, 6 and 7).

Each test names the Studio function (livepeer/studio @670a0a66, packages/api/src/) whose
behaviour it pins. The expected 422 bodies were produced by compiling Studio's merged
schema (api-schema + ai-api-schema + db-schema, as schema/compile-schemas.js does) with
Ajv 8 and validating the same bodies.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, upload
from tests.test_webhooks import Receiver, make_webhook, receiver  # noqa: F401 (fixture)

INTRUDER = {"Authorization": "Bearer another-tenant"}
KEY = "a2V5LWJ5dGVzLWZvci10ZXN0aW5n"  # base64 of b"key-bytes-for-testing"


async def _error(resp: Any) -> tuple[int, list[Any]]:
    return resp.status, (await resp.json())["errors"]


def _ajv(*errors: dict[str, Any]) -> list[dict[str, Any]]:
    return list(errors)


async def _ready_asset(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 60)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "ready"
    return {"asset": asset, "task": created["task"]}


# -- item 2: ownership and delete codes --------------------------------------------------


async def test_another_tenants_task_is_403(client: TestClient, auth: dict[str, str]) -> None:
    """controllers/task.ts app.get("/:id"): 404 when missing, 403 when someone else's."""
    created = await create_upload(client, auth)
    resp = await client.get(f"/api/task/{created['task']['id']}", headers=INTRUDER)
    assert await _error(resp) == (403, ["user can only request information on their own tasks"])
    resp = await client.get("/api/task/no-such-task", headers=auth)
    assert await _error(resp) == (404, ["not found"])
    assert (await get_json(client, f"/api/task/{created['task']['id']}", auth))["id"]


async def test_delete_codes(client: TestClient, auth: dict[str, str]) -> None:
    """controllers/asset.ts app.delete("/:id"): 404 missing, 403 someone else's, 400 twice."""
    created = await create_upload(client, auth)
    path = f"/api/asset/{created['asset']['id']}"
    resp = await client.delete(path, headers=INTRUDER)
    assert await _error(resp) == (403, ["users may only delete their own assets"])
    assert (await get_json(client, path, auth))["status"]["phase"] == "uploading"
    assert (await client.delete(path, headers=auth)).status == 204
    resp = await client.delete(path, headers=auth)
    assert await _error(resp) == (400, ["asset is already deleted"])
    # Even deleted, it is still someone else's: 403 comes before 400.
    resp = await client.delete(path, headers=INTRUDER)
    assert await _error(resp) == (403, ["users may only delete their own assets"])
    resp = await client.delete("/api/asset/no-such-asset", headers=auth)
    assert await _error(resp) == (404, ["Asset not found"])


async def test_patch_and_get_codes(client: TestClient, auth: dict[str, str]) -> None:
    """asset.ts app.patch("/:id"): 404 `asset not found` for someone else's, 422 when not
    ready (a deleted asset is in phase deleting); app.get("/:id"): checkResourceAccess."""
    created = await create_upload(client, auth)
    path = f"/api/asset/{created['asset']['id']}"
    resp = await client.patch(path, json={"name": "x"}, headers=INTRUDER)
    assert await _error(resp) == (404, ["asset not found"])
    assert await _error(await client.get(path, headers=INTRUDER)) == (404, ["not found"])
    resp = await client.patch(path, json={"name": "x"}, headers=auth)
    assert await _error(resp) == (422, ["asset is not ready"])
    assert (await client.delete(path, headers=auth)).status == 204
    resp = await client.patch(path, json={"name": "x"}, headers=auth)
    assert await _error(resp) == (422, ["asset is not ready"])
    assert await _error(await client.get(path, headers=auth)) == (404, ["Asset not found"])


async def test_restore_undoes_a_delete_as_studio_writes_it(
    client: TestClient,
    auth: dict[str, str],
    receiver: Receiver,  # noqa: F811
) -> None:
    """asset.ts app.post("/:id/restore") and scheduler.ts restoreAsset / updateAsset."""
    ready = await _ready_asset(client, auth)
    asset = ready["asset"]
    path = f"/api/asset/{asset['id']}"
    resp = await client.post(f"{path}/restore", headers=auth)
    assert await _error(resp) == (400, ["asset is not deleted"])
    assert (await client.delete(path, headers=auth)).status == 204
    resp = await client.post(f"{path}/restore", headers=INTRUDER)
    assert await _error(resp) == (403, ["users may only restore their own assets"])
    resp = await client.post("/api/asset/no-such-asset/restore", headers=auth)
    assert await _error(resp) == (404, ["asset not found"])

    await make_webhook(client, auth, receiver.url, ["asset.updated", "asset.ready"])
    await advance(client, auth, 1)
    resp = await client.post(f"{path}/restore", headers=auth)
    assert resp.status == 204 and await resp.read() == b""
    await advance(client, auth, 0)
    assert receiver.events == ["asset.updated", "asset.ready"]

    restored = await get_json(client, path, auth)
    assert restored["status"]["phase"] == "ready"
    assert restored["deleted"] is False and "deletedAt" not in restored
    # Studio's lists and playback lookups want `deleted IS NULL`: `false` is not.
    assert await get_json(client, "/api/asset", auth) == []
    resp = await client.get(f"/api/playback/{asset['playbackId']}", headers=auth)
    assert resp.status == 404
    # Restored, it may be deleted again.
    assert (await client.delete(path, headers=auth)).status == 204
    resp = await client.post(f"{path}/restore", headers=auth)
    assert resp.status == 204


# -- item 4: what the server writes at completion ----------------------------------------


async def test_completion_writes_the_asset_before_the_task(
    client: TestClient,
    auth: dict[str, str],
    receiver: Receiver,  # noqa: F811
) -> None:
    """scheduler.ts processTaskEvent: updateAsset (asset.updated, asset.ready), then
    updateTask with a status of {phase, updatedAt} only (task.updated, task.completed)."""
    await make_webhook(client, auth, receiver.url)
    ready = await _ready_asset(client, auth)
    assert receiver.events[-4:] == [
        "asset.updated",
        "asset.ready",
        "task.updated",
        "task.completed",
    ]
    task = await get_json(client, f"/api/task/{ready['task']['id']}", auth)
    assert task["status"] == {"phase": "completed", "updatedAt": task["status"]["updatedAt"]}
    snapshot = receiver.got[-1].body["payload"]["task"]["snapshot"]
    assert set(snapshot["status"]) == {"phase", "updatedAt"}


async def test_failure_writes_the_task_before_the_asset(
    client: TestClient,
    auth: dict[str, str],
    receiver: Receiver,  # noqa: F811
) -> None:
    """scheduler.ts failTask: updateTask (task.updated, task.failed) then updateAsset."""
    scenario = {"faults": [{"processing": {"fail_at_progress": 0.5}}]}
    resp = await client.put("/_emulator/scenario", json=scenario, headers=auth)
    assert resp.status == 200, await resp.text()
    await make_webhook(client, auth, receiver.url)
    await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 3600)
    assert receiver.events[-4:] == ["task.updated", "task.failed", "asset.updated", "asset.failed"]


# -- item 6: create-time checks -----------------------------------------------------------


async def test_encrypted_key_must_be_base64_before_the_policy_rule(
    client: TestClient, auth: dict[str, str]
) -> None:
    """asset.ts request-upload and upload/url: isValidBase64 (helpers.ts) first, each
    route with its own wording; then validateAssetPlaybackPolicy's policy rule."""
    bad = {"name": "x", "encryption": {"encryptedKey": "not base64!"}}
    resp = await client.post("/api/asset/request-upload", json=bad, headers=auth)
    assert await _error(resp) == (422, ["encryptedKey must be valid base64"])
    url_bad = {**bad, "url": "https://127.0.0.1:9/v.mp4"}
    resp = await client.post("/api/asset/upload/url", json=url_bad, headers=auth)
    assert await _error(resp) == (422, ['"encryptedKey" must be valid base64'])
    # Not canonical (Node re-encodes "QR==" as "QQ=="), unpadded: refused too.
    for key in ("QR==", "QQ"):
        body = {"name": "x", "encryption": {"encryptedKey": key}}
        resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
        assert resp.status == 422, key
    good = {"name": "x", "encryption": {"encryptedKey": KEY}}
    resp = await client.post("/api/asset/request-upload", json=good, headers=auth)
    assert await _error(resp) == (400, ["a playbackPolicy is required when using encryption"])
    assert await get_json(client, "/api/asset", auth) == []


async def test_valid_encryption_is_kept_on_the_source_and_the_task(
    client: TestClient, auth: dict[str, str]
) -> None:
    """asset.ts assetEncryptionWithoutKey adds `key: "***"` and keeps encryptedKey on
    source.encryption (toExternalAsset does not clean inside the source oneOf); the task
    shows toExternalTask's form, encryptedKey cleaned as writeOnly."""
    body = {"name": "x", "encryption": {"encryptedKey": KEY}, "playbackPolicy": {"type": "jwt"}}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    created = await resp.json()
    expected = {"type": "directUpload", "encryption": {"encryptedKey": KEY, "key": "***"}}
    assert created["asset"]["source"] == expected
    got = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert got["source"] == expected
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    assert task["params"]["upload"]["encryption"] == {"key": "***"}


async def test_a_webhook_policy_names_a_webhook_of_the_caller(
    client: TestClient, auth: dict[str, str]
) -> None:
    """asset.ts validateAssetPlaybackPolicy: unknown, deleted or another user's webhook
    → 400 `webhook <id> not found`, on create and on PATCH."""
    hook = {"name": "gate", "url": "http://127.0.0.1:9/gate", "events": ["playback.accessControl"]}
    resp = await client.post("/api/webhook", json=hook, headers=INTRUDER)
    theirs = (await resp.json())["id"]
    resp = await client.post("/api/webhook", json=hook, headers=auth)
    mine = (await resp.json())["id"]
    for webhook_id in ("nope", theirs):
        body = {"name": "x", "playbackPolicy": {"type": "webhook", "webhookId": webhook_id}}
        resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
        assert await _error(resp) == (400, [f"webhook {webhook_id} not found"])
    body = {"name": "x", "playbackPolicy": {"type": "webhook"}}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert await _error(resp) == (400, ["webhook undefined not found"])
    body = {"name": "x", "playbackPolicy": {"type": "webhook", "webhookId": mine}}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    assert (await client.delete(f"/api/webhook/{mine}", headers=auth)).status == 204
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert await _error(resp) == (400, [f"webhook {mine} not found"])


async def test_patch_checks_a_webhook_policy_too(client: TestClient, auth: dict[str, str]) -> None:
    """asset.ts app.patch("/:id") → validateAssetPlaybackPolicy, after the private/public rule."""
    ready = await _ready_asset(client, auth)
    path = f"/api/asset/{ready['asset']['id']}"
    patch = {"playbackPolicy": {"type": "webhook", "webhookId": "nope"}}
    resp = await client.patch(path, json=patch, headers=auth)
    assert await _error(resp) == (
        422,
        ["cannot update playback policy from private to public or vice versa"],
    )
    resp = await client.patch(path, json={"playbackPolicy": {"type": "public"}}, headers=auth)
    assert resp.status == 200


async def test_db_schema_fields_and_lit_policies(client: TestClient, auth: dict[str, str]) -> None:
    """The db-schema overlay adds objectStoreId, catalystPipelineStrategy and the
    lit_signing_condition type (no 422); validateAssetPayload then refuses a private
    asset on a custom object store, and ensureExperimentSubject a lit policy."""
    body = {"name": "x", "objectStoreId": "os-1", "catalystPipelineStrategy": "catalyst"}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    asset = (await resp.json())["asset"]
    assert "objectStoreId" not in asset and "catalystPipelineStrategy" not in asset
    private = {**body, "playbackPolicy": {"type": "jwt"}}
    resp = await client.post("/api/asset/request-upload", json=private, headers=auth)
    assert await _error(resp) == (403, ["private assets cannot use custom object store"])
    lit = {"name": "x", "playbackPolicy": {"type": "lit_signing_condition"}}
    resp = await client.post("/api/asset/request-upload", json=lit, headers=auth)
    assert await _error(resp) == (
        403,
        ["user is not a subject of experiment: lit-signing-condition"],
    )


# -- item 7: validation messages -------------------------------------------------------------


async def _ajv_errors(resp: Any) -> list[dict[str, Any]]:
    status, errors = await _error(resp)
    assert status == 422
    return [json.loads(e) for e in errors]


def _type(path: str, spath: str, type_: Any) -> dict[str, Any]:
    shown = ",".join(type_) if isinstance(type_, list) else type_
    return {
        "instancePath": path,
        "schemaPath": spath,
        "keyword": "type",
        "params": {"type": type_},
        "message": f"must be {shown}",
    }


def _one_of(path: str, spath: str) -> dict[str, Any]:
    return {
        "instancePath": path,
        "schemaPath": spath,
        "keyword": "oneOf",
        "params": {"passingSchemas": None},
        "message": "must match exactly one schema in oneOf",
    }


async def test_one_of_lists_every_branch_then_its_own_error(
    client: TestClient, auth: dict[str, str]
) -> None:
    """middleware/validators.ts validatePost sends all of Ajv's `errors`; without
    allErrors that is one error, except under oneOf (every branch's, then oneOf's)."""
    resp = await client.post(
        "/api/asset/request-upload", json={"name": "x", "creatorId": 5}, headers=auth
    )
    c = "#/properties/creatorId/oneOf"
    assert await _ajv_errors(resp) == [
        _type("/creatorId", f"{c}/0/type", "object"),
        _type("/creatorId", f"{c}/1/type", "string"),
        _one_of("/creatorId", c),
    ]
    body = {"name": "x", "storage": {"ipfs": "yes"}}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    s = "#/properties/storage/properties/ipfs/oneOf"
    assert await _ajv_errors(resp) == [
        _type("/storage/ipfs", f"{s}/0/type", "object"),
        _type("/storage/ipfs", f"{s}/1/type", "boolean"),
        _type("/storage/ipfs", f"{s}/2/type", "null"),
        _one_of("/storage/ipfs", s),
    ]
    # Nested: the inner oneOf's list comes inside the outer's first branch.
    ready = await _ready_asset(client, auth)
    patch = {"storage": {"ipfs": {"spec": 5}}}
    resp = await client.patch(f"/api/asset/{ready['asset']['id']}", json=patch, headers=auth)
    assert await _ajv_errors(resp) == [
        _type("/storage/ipfs/spec", f"{s}/0/properties/spec/oneOf/0/type", "null"),
        _type("/storage/ipfs/spec", f"{s}/0/properties/spec/oneOf/1/type", "object"),
        _one_of("/storage/ipfs/spec", f"{s}/0/properties/spec/oneOf"),
        _type("/storage/ipfs", f"{s}/1/type", "boolean"),
        _type("/storage/ipfs", f"{s}/2/type", "null"),
        _one_of("/storage/ipfs", s),
    ]
    # Several types: Ajv's params.type is the list itself.
    body = {"name": "x", "playbackPolicy": 5}
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    policy_type = _type("/playbackPolicy", "#/properties/playbackPolicy/type", ["object", "null"])
    assert await _ajv_errors(resp) == [policy_type]


async def test_url_is_checked_in_studios_property_order(
    client: TestClient, auth: dict[str, str]
) -> None:
    """new-asset-from-url-payload lists url before encryption: Ajv stops at url."""
    body = {"name": "x", "url": 5, "encryption": 5}
    resp = await client.post("/api/asset/upload/url", json=body, headers=auth)
    assert await _ajv_errors(resp) == [_type("/url", "#/properties/url/type", "string")]


async def test_a_top_level_array_body(client: TestClient, auth: dict[str, str]) -> None:
    """new-asset-payload and new-asset-from-url-payload have no `type: object`, so an array
    passes Ajv and the handler reads every field as undefined; asset-patch-payload has one."""
    resp = await client.post("/api/asset/request-upload", json=[1, 2], headers=auth)
    assert resp.status == 200, await resp.text()
    asset = (await resp.json())["asset"]
    assert "name" not in asset and asset["status"]["phase"] == "uploading"
    resp = await client.post("/api/asset/upload/url", json=[1], headers=auth)
    assert await _error(resp) == (422, ['Must provide a "url" field for the asset contents'])
    resp = await client.patch(f"/api/asset/{asset['id']}", json=[1], headers=auth)
    assert await _ajv_errors(resp) == [_type("", "#/type", "object")]


async def test_webhook_events_enum_is_in_studios_order(
    client: TestClient, auth: dict[str, str]
) -> None:
    """schema webhook.events: asset.failed comes before asset.ready."""
    body = {"name": "x", "url": "http://127.0.0.1:9/", "events": ["nope"]}
    resp = await client.post("/api/webhook", json=body, headers=auth)
    (error,) = await _ajv_errors(resp)
    allowed = error["params"]["allowedValues"]
    asset_events = [e for e in allowed if e.startswith("asset.")]
    assert asset_events == [
        "asset.created",
        "asset.updated",
        "asset.failed",
        "asset.ready",
        "asset.deleted",
    ]
    assert allowed[-4:] == ["task.spawned", "task.updated", "task.completed", "task.failed"]
