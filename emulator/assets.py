"""The Assets API's use cases on assets and tasks: create (request-upload, URL import),
read, list, update, delete, and look up for playback. Owns the rules of who may see and
change what; every refusal is an ApiError raised here. Routes call one method each and
get documents back.
"""

from __future__ import annotations

from pathlib import Path

from emulator import documents
from emulator.blobs import Blobs
from emulator.errors import NotFound, UnprocessableEntity
from emulator.events import EventSink, make_events, save_with_events
from emulator.models import AssetPhase, Doc
from emulator.outputs import OutputFiles
from emulator.processing import Processing
from emulator.scheduler import Scheduler
from emulator.store import ASSET_FIELDS, TASK_FIELDS, AssetRow, Changes, ListQuery, Store, TaskRow
from emulator.tokens import UploadTokens

DUPLICATE_IMPORT_WINDOW_MS = 15 * 60 * 1000
# The fields a list may filter and sort on (what parse_list_query accepts).
ASSET_LIST_FIELDS = tuple(ASSET_FIELDS)
TASK_LIST_FIELDS = tuple(TASK_FIELDS)


class Assets:
    def __init__(
        self,
        *,
        store: Store,
        blobs: Blobs,
        scheduler: Scheduler,
        tokens: UploadTokens,
        events: EventSink,
        processing: Processing,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._scheduler = scheduler
        self._tokens = tokens
        self._events = events
        self._processing = processing

    # -- creating assets ----------------------------------------------------------------

    async def request_upload(self, tenant: str, body: Doc, origin: str) -> tuple[Doc, str]:
        """Create an asset waiting for its bytes; returns it and its signed upload token."""
        documents.check_creation_extras(body)
        now = self._scheduler.now_ms(tenant)
        asset = documents.new_asset(
            tenant, body, AssetPhase.UPLOADING, {"type": "directUpload"}, now
        )
        task = documents.new_upload_task(
            asset, f"{origin}/asset/{asset['playbackId']}/video", body, now
        )
        events = make_events(tenant, now, [("asset.created", asset), ("task.spawned", task)])
        changes = Changes(
            assets=[AssetRow(tenant, asset)], tasks=[TaskRow(tenant, task)], events=events
        )
        await save_with_events(self._store, self._events, changes)
        token = self._tokens.issue(asset["playbackId"])
        return {"asset": asset, "task": {"id": task["id"]}}, token

    async def import_from_url(self, tenant: str, body: Doc) -> tuple[bool, Doc]:
        """Create an asset from a URL; (created, {asset, task}). A recent duplicate is reused."""
        documents.check_creation_extras(body)
        now = self._scheduler.now_ms(tenant)
        since = now - DUPLICATE_IMPORT_WINDOW_MS
        existing = await self._store.find_recent_import(tenant, body["url"], since)
        if existing is not None:
            tasks = await self._store.tasks_of_asset(existing.doc["id"])
            task_id = tasks[0].doc["id"] if tasks else ""
            return False, {"asset": existing.doc, "task": {"id": task_id}}
        source = {"type": "url", "url": body["url"]}
        asset = documents.new_asset(tenant, body, AssetPhase.WAITING, source, now)
        task = documents.new_upload_task(asset, body["url"], body, now)
        documents.schedule(task, now)
        row = AssetRow(tenant, asset)
        events = make_events(
            tenant, now, [("asset.created", asset), ("task.spawned", task), ("task.updated", task)]
        )
        changes = Changes(assets=[row], tasks=[TaskRow(tenant, task)], events=events)
        await save_with_events(self._store, self._events, changes)
        self._processing.start_import(row)
        return True, {"asset": asset, "task": {"id": task["id"]}}

    # -- reading and changing assets ----------------------------------------------------

    async def _owned_asset(self, tenant: str, asset_id: str, missing: str) -> AssetRow:
        row = await self._store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound(missing)
        if row.tenant != tenant:
            raise NotFound("not found")
        return row

    async def get_asset(self, tenant: str, asset_id: str) -> Doc:
        return (await self._owned_asset(tenant, asset_id, "Asset not found")).doc

    async def list_assets(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._store.list_assets(tenant, query)

    async def update_asset(self, tenant: str, asset_id: str, patch: Doc) -> Doc:
        row = await self._owned_asset(tenant, asset_id, "asset not found")
        asset = row.doc
        if asset["status"]["phase"] != AssetPhase.READY.value:
            raise UnprocessableEntity("asset is not ready")
        documents.apply_patch(asset, patch)
        now = self._scheduler.now_ms(tenant)
        asset["status"] = {**asset["status"], "updatedAt": now}
        events = make_events(tenant, now, [("asset.updated", asset)])
        await save_with_events(self._store, self._events, Changes(assets=[row], events=events))
        return asset

    async def delete_asset(self, tenant: str, asset_id: str) -> None:
        row = await self._owned_asset(tenant, asset_id, "Asset not found")
        now = self._scheduler.now_ms(tenant)
        # Made now: the event carries the asset as it was before deletion.
        events = make_events(tenant, now, [("asset.deleted", row.doc)])
        self._processing.cancel(asset_id)
        row.doc.update(deleted=True, deletedAt=now)
        row.doc["status"] = {"phase": AssetPhase.DELETING.value, "updatedAt": now}
        # Files first: on a full disk that frees space for the database to commit in.
        self._blobs.remove_asset_media(row.media_path)
        row.media_path = None
        changes = Changes(assets=[row], delete_steps_of_asset=asset_id, events=events)
        await save_with_events(self._store, self._events, changes)

    # -- tasks ----------------------------------------------------------------------------

    async def get_task(self, tenant: str, task_id: str) -> Doc:
        task = await self._store.get_task(task_id)
        if task is None or task.tenant != tenant:
            raise NotFound("not found")
        return task.doc

    async def list_tasks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._store.list_tasks(tenant, query)

    # -- playback -------------------------------------------------------------------------

    async def playable(self, playback_id: str, *, early: bool = False) -> tuple[Doc, Path]:
        """An asset by playbackId and its uploaded file, once it is ready, or with `early`
        once its source playback is (Studio's sourcePlaybackReady, for playback info)."""
        row = await self._store.get_asset_by_playback_id(playback_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound(f"No playback URL found for {playback_id}")
        ready = row.doc["status"]["phase"] == AssetPhase.READY.value
        if not (ready or (early and row.doc.get("sourcePlaybackReady"))) or not row.media_path:
            raise UnprocessableEntity("asset is not ready for playback")
        return row.doc, self._blobs.resolve(row.media_path)

    async def output_file(self, playback_id: str, path: str) -> Path:
        """One of the asset's playable outputs (a playlist, segment, MP4, thumbnail) by
        its path under `/hls/<playbackId>/`, once playback info lists it."""
        row = await self._store.get_asset_by_playback_id(playback_id)
        if row is None or row.doc.get("deleted") or not row.media_path or not row.doc.get("files"):
            raise NotFound("not found")
        found = OutputFiles.resolve(self._blobs.resolve(row.media_path), path)
        if found is None:
            raise NotFound("not found")
        return found
