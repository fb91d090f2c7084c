"""The Assets API's use cases on assets and tasks: create (request-upload, URL import),
read, list, update, delete, and look up for playback. Owns the rules of who may see and
change what; every refusal is an ApiError raised here. Routes call one method each and
get documents back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path

from emulator import documents
from emulator.blobs import Blobs
from emulator.errors import BadRequest, Forbidden, NotFound, UnprocessableEntity
from emulator.events import EventSink, make_events, save_with_events
from emulator.exports import Exports
from emulator.models import AssetPhase, Doc
from emulator.outputs import OutputFiles
from emulator.processing import Processing
from emulator.readcache import ReadCache
from emulator.scheduler import Scheduler
from emulator.store import ASSET_FIELDS, TASK_FIELDS, AssetRow, Changes, ListQuery, Store, TaskRow
from emulator.tokens import UploadTokens

DUPLICATE_IMPORT_WINDOW_MS = 15 * 60 * 1000
# A seeded asset's (asset id, playback id, upload task id): emulator/seeding.py.
SeededIds = tuple[str, str, str]
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
        exports: Exports,
        read_cache: ReadCache | None = None,
    ) -> None:
        self._exports = exports
        # GET /api/asset/{id}'s answers; the store tells it which assets each write changed.
        self._views = read_cache or ReadCache()
        store.watch_assets(self._views.invalidate)
        self._store = store
        self._blobs = blobs
        self._scheduler = scheduler
        self._tokens = tokens
        self._events = events
        self._processing = processing

    @property
    def read_cache(self) -> ReadCache:
        return self._views

    # -- creating assets ----------------------------------------------------------------

    async def request_upload(
        self,
        tenant: str,
        body: Doc,
        origin: str,
        *,
        token_name: str | None = None,
        ids: SeededIds | None = None,
    ) -> tuple[Doc, str]:
        """Create an asset waiting for its bytes; returns it and its signed upload token.
        `ids` (asset, playback, task): a seed file's stable ids."""
        documents.check_encrypted_key(body, "encryptedKey must be valid base64")
        await self._check_new_asset(tenant, body)
        now = self._scheduler.now_ms(tenant)
        asset = documents.new_asset(
            tenant,
            body,
            AssetPhase.UPLOADING,
            {"type": "directUpload"},
            now,
            token_name,
            ids[:2] if ids else None,
        )
        task = documents.new_upload_task(
            asset, f"{origin}/asset/{asset['playbackId']}/video", body, now, ids and ids[2]
        )
        events = make_events(tenant, now, [("asset.created", asset), ("task.spawned", task)])
        changes = Changes(
            assets=[AssetRow(tenant, asset)], tasks=[TaskRow(tenant, task)], events=events
        )
        await save_with_events(self._store, self._events, changes)
        token = self._tokens.issue(asset["playbackId"])
        return {"asset": asset, "task": {"id": task["id"]}}, token

    async def import_from_url(
        self,
        tenant: str,
        body: Doc,
        *,
        token_name: str | None = None,
        ids: SeededIds | None = None,
    ) -> tuple[bool, Doc]:
        """Create an asset from a URL; (created, {asset, task}). A recent duplicate is reused."""
        if not body.get("url"):  # only a top-level array body gets here without one
            raise UnprocessableEntity('Must provide a "url" field for the asset contents')
        documents.check_encrypted_key(body, '"encryptedKey" must be valid base64')
        await self._check_new_asset(tenant, body)
        now = self._scheduler.now_ms(tenant)
        since = now - DUPLICATE_IMPORT_WINDOW_MS
        existing = await self._store.find_recent_import(tenant, body["url"], since)
        # A seed file's assets are each their own, even when two import the same URL.
        if existing is not None and ids is None:
            tasks = await self._store.tasks_of_asset(existing.doc["id"])
            task_id = tasks[0].doc["id"] if tasks else ""
            return False, {"asset": existing.doc, "task": {"id": task_id}}
        source = {"type": "url", "url": body["url"]}
        asset = documents.new_asset(
            tenant, body, AssetPhase.WAITING, source, now, token_name, ids[:2] if ids else None
        )
        task = documents.new_upload_task(asset, body["url"], body, now, ids and ids[2])
        documents.schedule(task, now)
        row = AssetRow(tenant, asset)
        events = make_events(
            tenant, now, [("asset.created", asset), ("task.spawned", task), ("task.updated", task)]
        )
        changes = Changes(assets=[row], tasks=[TaskRow(tenant, task)], events=events)
        await save_with_events(self._store, self._events, changes)
        self._processing.start_import(row)
        return True, {"asset": asset, "task": {"id": task["id"]}}

    async def _check_new_asset(self, tenant: str, body: Doc) -> None:
        """Studio's validateAssetPayload checks, in its order (controllers/asset.ts)."""
        if body.get("profiles") == []:
            raise BadRequest("assets must have at least one profile")
        policy = body.get("playbackPolicy")
        if documents.is_private(policy) and body.get("objectStoreId"):
            raise Forbidden("private assets cannot use custom object store")
        await self._check_policy(tenant, policy)
        if (body.get("encryption") or {}).get("encryptedKey") and not policy:
            raise BadRequest("a playbackPolicy is required when using encryption")

    async def _check_policy(self, tenant: str, policy: Doc | None) -> None:
        """validateAssetPlaybackPolicy's refusals, on create and on PATCH."""
        kind = (policy or {}).get("type")
        if kind == "lit_signing_condition":
            # Studio lets only the users of its lit experiment use this type.
            raise Forbidden("user is not a subject of experiment: lit-signing-condition")
        if kind == "webhook":
            assert policy is not None
            webhook_id = policy.get("webhookId")
            row = await self._store.get_webhook(webhook_id) if webhook_id else None
            if row is None or row.deleted or row.tenant != tenant:
                # JavaScript's template string writes a missing id as "undefined".
                raise BadRequest(f"webhook {webhook_id or 'undefined'} not found")

    # -- reading and changing assets ----------------------------------------------------

    async def get_asset(self, tenant: str, asset_id: str) -> Doc:
        row = await self._store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound("Asset not found")
        if row.tenant != tenant:  # checkResourceAccess
            raise NotFound("not found")
        return row.doc

    async def asset_view(
        self, tenant: str, asset_id: str, variant: Hashable, render: Callable[[Doc], bytes]
    ) -> bytes:
        """get_asset's document as `render` encodes it (one `variant` of it: the caller's
        origin and options), from the read cache when the asset has not been written
        since; the same refusals as get_asset."""
        kept = self._views.get(asset_id, variant)
        if kept is not None:
            owner, body = kept
            if owner != tenant:
                raise NotFound("not found")  # as get_asset: it exists, and is not deleted
            return body
        generation = self._views.generation
        body = render(await self.get_asset(tenant, asset_id))
        self._views.put(asset_id, tenant, variant, body, generation)
        return body

    async def asset_list_views(
        self, tenant: str, query: ListQuery, variant: Hashable, render: Callable[[Doc], bytes]
    ) -> tuple[list[bytes], int | None]:
        """list_assets' page with each asset as `render` encodes it, taken from the read
        cache where it has one (decoding, shaping and encoding a page of documents is most
        of a list's cost), and kept there for the next read."""
        generation = self._views.generation
        listed, total = await self._store.list_stored_assets(tenant, query)
        bodies: list[bytes] = []
        for item in listed:
            kept = self._views.get(item.id, variant)
            if kept is not None:  # the query only finds the tenant's own assets
                bodies.append(kept[1])
                continue
            body = render(item.doc())
            self._views.put(item.id, tenant, variant, body, generation)
            bodies.append(body)
        return bodies, total

    async def update_asset(self, tenant: str, asset_id: str, patch: Doc) -> Doc:
        row = await self._store.get_asset(asset_id)
        # Studio reads deleted assets too: one being deleted is "not ready" (phase deleting).
        if row is None or row.tenant != tenant:
            raise NotFound("asset not found")
        asset = row.doc
        if asset["status"]["phase"] != AssetPhase.READY.value:
            raise UnprocessableEntity("asset is not ready")
        now = self._scheduler.now_ms(tenant)
        # `storage` first, as Studio's reconcileAssetStorage: it may start an IPFS export.
        export = self._exports.reconcile(row, patch.get("storage"), now)
        if patch.get("playbackPolicy"):
            documents.check_policy_change(asset, patch["playbackPolicy"])
            await self._check_policy(tenant, patch["playbackPolicy"])
        documents.apply_patch(asset, {k: v for k, v in patch.items() if k != "storage"})
        asset["status"] = {**asset["status"], "updatedAt": now}
        events = make_events(tenant, now, [("asset.updated", asset)])
        await self._exports.save(Changes(assets=[row], events=events), export)
        return asset

    async def _asset_of(self, tenant: str, asset_id: str, missing: str, other: str) -> AssetRow:
        """DELETE's and restore's lookup: deleted assets included, others' refused (403)."""
        row = await self._store.get_asset(asset_id)
        if row is None:
            raise NotFound(missing)
        if row.tenant != tenant:
            raise Forbidden(other)
        return row

    async def delete_asset(self, tenant: str, asset_id: str) -> None:
        other = "users may only delete their own assets"
        row = await self._asset_of(tenant, asset_id, "Asset not found", other)
        if row.doc["status"]["phase"] == AssetPhase.DELETING.value or row.doc.get("deleted"):
            raise BadRequest("asset is already deleted")
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

    async def restore_asset(self, tenant: str, asset_id: str) -> None:
        """POST /asset/{id}/restore: undo a DELETE (Studio keeps a deleted asset for 7 days
        in phase `deleting`). As Studio's restoreAsset writes it: `deleted: false` (not
        removed: Studio's lists and playback lookups then still skip the asset, as they
        skip any asset with a `deleted` field), `deletedAt: null`, phase ready."""
        other = "users may only restore their own assets"
        row = await self._asset_of(tenant, asset_id, "asset not found", other)
        if not row.doc.get("deleted"):
            raise BadRequest("asset is not deleted")
        if row.doc["status"]["phase"] != AssetPhase.DELETING.value:
            raise BadRequest("asset is not in a restorable state")
        now = self._scheduler.now_ms(tenant)
        row.doc.update(deleted=False, deletedAt=None)
        row.doc["status"] = {"phase": AssetPhase.READY.value, "updatedAt": now}
        events = make_events(tenant, now, [("asset.updated", row.doc), ("asset.ready", row.doc)])
        await save_with_events(self._store, self._events, Changes(assets=[row], events=events))

    # -- tasks ----------------------------------------------------------------------------

    async def get_task(self, tenant: str, task_id: str) -> Doc:
        task = await self._store.get_task(task_id)
        if task is None:
            raise NotFound("not found")
        if task.tenant != tenant:  # controllers/task.ts GET /:id
            raise Forbidden("user can only request information on their own tasks")
        return task.doc

    async def list_tasks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._store.list_tasks(tenant, query)

    # -- playback -------------------------------------------------------------------------

    async def playable(
        self,
        playback_id: str,
        *,
        early: bool = False,
        cid_lookup: bool = False,
        tenant: str | None = None,
        origin: str | None = None,
    ) -> tuple[Doc, Path]:
        """An asset by playbackId and its uploaded file, once it is ready, or with `early`
        once its source playback is (Studio's sourcePlaybackReady, for playback info)."""
        row = await self._store.get_asset_by_playback_id(playback_id)
        if row is None and cid_lookup:  # Studio's getResourceByPlaybackId: then by IPFS CID
            row = await self._exports.asset_by_cid(playback_id, tenant, origin=origin)
        # Studio's getByPlaybackId: `deleted IS NULL`, so a restored asset is not found either.
        if row is None or "deleted" in row.doc:
            raise NotFound(f"No playback URL found for {playback_id}")
        ready = row.doc["status"]["phase"] == AssetPhase.READY.value
        if not (ready or (early and row.doc.get("sourcePlaybackReady"))) or not row.media_path:
            raise UnprocessableEntity("asset is not ready for playback")
        return row.doc, self._blobs.resolve(row.media_path)

    async def output_file(self, playback_id: str, path: str) -> Path:
        """One of the asset's playable outputs (a playlist, segment, MP4, thumbnail) by
        its path under `/hls/<playbackId>/`, once playback info lists it."""
        row = await self._store.get_asset_by_playback_id(playback_id)
        if row is None or "deleted" in row.doc or not row.media_path or not row.doc.get("files"):
            raise NotFound("not found")
        found = OutputFiles.resolve(self._blobs.resolve(row.media_path), path)
        if found is None:
            raise NotFound("not found")
        return found
