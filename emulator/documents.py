"""Studio's asset and upload-task documents: how they are born, what each processing step
writes into them, and the field rules of create and update.

Pure functions over plain dicts: the service decides when (and under which lock and
clock) they run and stores the result; the timestamps they write are passed in.
"""

from __future__ import annotations

import base64
from typing import Any

from emulator.errors import BadRequest, UnprocessableEntity
from emulator.models import (
    AssetPhase,
    Doc,
    Step,
    StepKind,
    TaskPhase,
    new_id,
    new_playback_id,
    tenant_project_id,
    tenant_user_id,
)

# -- creation ---------------------------------------------------------------------------


def new_asset(
    tenant: str,
    body: Doc,
    phase: AssetPhase,
    source: Doc,
    now: int,
    token_name: str | None = None,
    ids: tuple[str, str] | None = None,
) -> Doc:
    # `ids` (asset id, playback id): a seed file's stable ids (emulator/seeding.py).
    asset_id = ids[0] if ids else new_id()
    doc: Doc = {
        "id": asset_id,
        "playbackId": ids[1] if ids else new_playback_id(asset_id),
        "userId": tenant_user_id(tenant),
        "projectId": tenant_project_id(tenant),
        "createdAt": now,
        # Studio's validateAssetPayload: the name of the API key that created it.
        **({"createdByTokenName": token_name} if token_name else {}),
        "status": {"phase": phase.value, "updatedAt": now},
        "source": source,
    }
    if "name" in body:  # absent only for a top-level array body, which Studio's schema lets by
        doc["name"] = body["name"]
    if body.get("encryption"):
        # Studio's assetEncryptionWithoutKey adds `key: "***"` but keeps `encryptedKey`, and
        # toExternalAsset does not clean inside `source` (a oneOf): GET shows both.
        doc["source"] = {**source, "encryption": {**body["encryption"], "key": "***"}}
    for key in ("playbackPolicy", "profiles", "staticMp4", "c2pa"):
        if body.get(key) is not None:
            doc[key] = body[key]
    if "creatorId" in body:
        doc["creatorId"] = _creator_id(body["creatorId"])
    if body.get("storage"):
        storage = _storage(body["storage"], None)
        if storage:
            doc["storage"] = storage
    return doc


def new_upload_task(asset: Doc, url: str, body: Doc, now: int, task_id: str | None = None) -> Doc:
    params: Doc = {"url": url, "thumbnails": True}
    # request-upload's task takes no targetSegmentSizeSecs in Studio; upload/url's does.
    keys = ("profiles", "c2pa") if asset["source"]["type"] == "directUpload" else None
    for key in keys or ("profiles", "targetSegmentSizeSecs", "c2pa"):
        if body.get(key) is not None:
            params[key] = body[key]
    if body.get("encryption"):
        # What toExternalTask shows (the key replaced, encryptedKey cleaned as writeOnly):
        # the emulator never decrypts, so it keeps no more than that.
        params["encryption"] = {"key": "***"}
    return {
        "id": task_id or new_id(),
        "type": "upload",
        "createdAt": now,
        "outputAssetId": asset["id"],
        "userId": asset["userId"],
        "projectId": asset["projectId"],
        "params": {"upload": params},
        "status": {"phase": TaskPhase.PENDING.value, "updatedAt": now},
    }


def check_encrypted_key(body: Doc, message: str) -> None:
    """Studio's first check after the schema on both creates (the two routes word it
    differently): a non-empty encryptedKey must be base64 as Node writes it."""
    key = (body.get("encryption") or {}).get("encryptedKey")
    if key and not _is_base64(key):
        raise UnprocessableEntity(message)


def _is_base64(text: str) -> bool:
    # helpers.ts isValidBase64: Buffer.from(s, "base64").toString("base64") === s, i.e. s
    # is the canonical, padded encoding of some bytes.
    try:
        return base64.b64encode(base64.b64decode(text, validate=True)).decode() == text
    except ValueError:  # binascii.Error, and non-ASCII text
        return False


# -- processing -------------------------------------------------------------------------


def schedule(task: Doc, now: int) -> None:
    """pending → waiting: what Studio's scheduler writes when a task is queued."""
    task["status"] = {"phase": TaskPhase.WAITING.value, "updatedAt": now, "retries": 0}
    task.setdefault("scheduledAt", now)


def apply_step(step: Step, asset: Doc, task: Doc) -> bool:
    """Write one planned step into the asset and its task; False if the asset is left as
    it was (a retry re-queues the task only, as Studio does)."""
    at = step.due_ms
    retries = task["status"].get("retries", 0)
    if step.kind is StepKind.RETRY:
        task["status"] = {
            "phase": TaskPhase.WAITING.value,
            "updatedAt": at,
            "retries": retries + 1,
            "errorMessage": str(step.data.get("error") or "processing failed"),
        }
        return False
    if step.kind in (StepKind.START, StepKind.PROGRESS):
        progress = float(step.data.get("progress") or 0.0)
        if asset["status"]["phase"] == AssetPhase.PROCESSING.value:
            # After a retry the task starts again from 0; the asset's progress never drops.
            progress_shown = max(progress, float(asset["status"].get("progress") or 0.0))
        else:
            progress_shown = progress
        asset["status"] = {
            "phase": AssetPhase.PROCESSING.value,
            "updatedAt": at,
            "progress": progress_shown,
        }
        task["status"] = {
            "phase": TaskPhase.RUNNING.value,
            "updatedAt": at,
            "progress": progress,
            "retries": retries,
        }
    elif step.kind is StepKind.SOURCE_READY:
        files = step.data.get("files")
        if not files:  # no outputs were made: nothing more is playable than before
            return False
        asset.update(files=files, sourcePlaybackReady=True)
        # Late when ffmpeg was slower than the timeline: never back in time.
        asset["status"] = {**asset["status"], "updatedAt": max(at, asset["status"]["updatedAt"])}
        task["status"] = {**task["status"], "updatedAt": max(at, task["status"]["updatedAt"])}
    elif step.kind is StepKind.READY:
        spec = dict(step.data.get("spec") or {})
        asset.update({k: v for k, v in spec.items() if v is not None})
        if step.data.get("files"):
            asset["files"] = step.data["files"]
        asset["status"] = {"phase": AssetPhase.READY.value, "updatedAt": at}
        # Studio's processTaskEvent writes a whole new status: no progress, no retries.
        task["status"] = {"phase": TaskPhase.COMPLETED.value, "updatedAt": at}
        asset_spec = _asset_spec(asset)
        exported = (step.data.get("ipfs") or {}).get("storage")
        if exported:  # created with storage.ipfs: the upload task pinned it (exports.py)
            asset_spec["storage"] = exported
            status = {"phase": "ready", "tasks": {"last": task["id"]}}
            asset["storage"] = {**exported, "status": status}
        task["output"] = {"upload": {"assetSpec": asset_spec}}
    else:
        error = str(step.data.get("error") or "processing failed")
        asset["status"] = {"phase": AssetPhase.FAILED.value, "updatedAt": at, "errorMessage": error}
        task["status"] = {
            "phase": TaskPhase.FAILED.value,
            "updatedAt": at,
            "errorMessage": error,
            "retries": retries,
        }
    return True


def _asset_spec(asset: Doc) -> Doc:
    # The SDKs parse assetSpec as an Asset, which requires id, name and source.
    keys = ("id", "name", "source", "type", "size", "hash", "videoSpec", "playbackId")
    return {k: asset[k] for k in keys if asset.get(k) is not None}


# -- update -----------------------------------------------------------------------------


def check_policy_change(asset: Doc, new: Any) -> None:
    if is_private(asset.get("playbackPolicy")) != is_private(new):
        raise UnprocessableEntity(
            "cannot update playback policy from private to public or vice versa"
        )


def apply_patch(asset: Doc, patch: Doc) -> None:
    """PATCH /asset/{id}'s field rules (the caller checks the asset is ready)."""
    if "playbackPolicy" in patch:
        check_policy_change(asset, patch["playbackPolicy"])
        asset["playbackPolicy"] = patch["playbackPolicy"]
    if "name" in patch:
        asset["name"] = patch["name"]
    if "creatorId" in patch:
        asset["creatorId"] = _creator_id(patch["creatorId"])
    if "storage" in patch:
        asset["storage"] = _storage(patch["storage"], asset.get("storage"))


def _creator_id(value: Any) -> Any:
    return {"type": "unverified", "value": value} if isinstance(value, str) else value


def is_private(policy: Any) -> bool:
    return isinstance(policy, dict) and policy.get("type") not in (None, "public")


def _storage(given: Doc, current: Doc | None) -> Doc:
    """Record the IPFS spec asked for (Studio's storageInputToState). The export is
    exports.py's: an export task after a PATCH, the upload task's own pin on create."""
    ipfs = given.get("ipfs")
    had_spec = bool(current and (current.get("ipfs") or {}).get("spec") is not None)
    if ipfs is False or (ipfs is None and "ipfs" in given):
        if had_spec:
            raise BadRequest("Cannot remove asset from IPFS")
        return current or {}
    if ipfs is True:
        spec: Doc = {}
    elif isinstance(ipfs, dict):
        spec = ipfs.get("spec") or {}
    else:
        return current or {}
    return {"ipfs": {"spec": spec}}
