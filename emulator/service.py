"""The use cases of the Assets API. Owns phase transitions and their invariants.

Routes call one method each and get documents back; every refusal is an ApiError raised
here. Media that arrives (PUT, tus, URL import) is hashed and probed as the asset's
background job; processing is then a plan of timed steps (timeline) run by the
scheduler, and what each step writes into the documents is emulator/documents.py's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from emulator import blobs, documents, fetch, timeline
from emulator.blobs import Blobs
from emulator.clock import Clock, ManualClock, real_delay
from emulator.errors import Forbidden, NotFound, UnprocessableEntity
from emulator.events import NO_EVENTS, EventSink, make_events, step_events
from emulator.keyed import KeyedJobs
from emulator.media import Prober
from emulator.models import (
    AssetPhase,
    Digests,
    Doc,
    ProbeResult,
    ReceivedFile,
    Step,
    StepKind,
    TaskPhase,
)
from emulator.rulebook import Rulebook
from emulator.scenarios import Scenario
from emulator.scheduler import Scheduler
from emulator.store import AssetRow, Changes, ListQuery, Store, TaskRow
from emulator.tokens import InvalidToken, UploadTokens

log = logging.getLogger(__name__)

DUPLICATE_IMPORT_WINDOW_MS = 15 * 60 * 1000
CLOCK_META_KEY = "manual_clock"


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int
    timeout: float


class Service:
    def __init__(
        self,
        *,
        store: Store,
        blobs: Blobs,
        prober: Prober,
        clock: Clock,
        tokens: UploadTokens,
        scenario: Scenario,
        import_limits: ImportLimits,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.prober = prober
        self.clock = clock
        self.tokens = tokens
        self.rules = Rulebook(scenario)  # the scenario in force per tenant, and its faults
        self.import_limits = import_limits
        self.scheduler = Scheduler(store, clock, self.apply_step)
        self.events: EventSink = NO_EVENTS  # webhook events go here (emulator/delivery.py)
        # Background work per asset that moving time must wait for: a URL download, or
        # hashing and probing media that arrived; by asset id.
        self._jobs = KeyedJobs()
        # Parts beside processing (tus uploads) that must see time move and resets; each
        # is called with the tenant, or None for everyone.
        self.clock_hooks: list[Callable[[str | None], Awaitable[None]]] = []
        self.reset_hooks: list[Callable[[str | None], Awaitable[None]]] = []

    @property
    def scenario(self) -> Scenario:
        """The server's default scenario (--scenario)."""
        return self.rules.default

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        if isinstance(self.clock, ManualClock):
            saved = await self.store.get_meta(CLOCK_META_KEY)
            if saved:
                self.clock.restore(json.loads(saved))
        for row in await self.store.imports_in_flight():
            self._spawn(row, self._run_import(row))
        for row in await self.store.arrivals_in_flight():  # stopped before processing was planned
            path = self.blobs.resolve(row.media_path or "")
            self._spawn(row, self._analyse(row.doc["id"], path, _updated_at(row)))
        await self.scheduler.run_due()
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        await self._jobs.stop()

    # -- creating assets ----------------------------------------------------------------

    async def request_upload(self, tenant: str, body: Doc, origin: str) -> tuple[Doc, str]:
        """Create an asset waiting for its bytes; returns it and its signed upload token."""
        documents.check_creation_extras(body)
        now = self.clock.now_ms(tenant)
        asset = documents.new_asset(
            tenant, body, AssetPhase.UPLOADING, {"type": "directUpload"}, now
        )
        task = documents.new_upload_task(
            asset, f"{origin}/asset/{asset['playbackId']}/video", body, now
        )
        events = make_events(tenant, now, [("asset.created", asset), ("task.spawned", task)])
        await self._save(
            Changes(assets=[AssetRow(tenant, asset)], tasks=[TaskRow(tenant, task)], events=events)
        )
        return {"asset": asset, "task": {"id": task["id"]}}, self.tokens.issue(asset["playbackId"])

    async def import_from_url(self, tenant: str, body: Doc) -> tuple[bool, Doc]:
        """Create an asset from a URL; (created, {asset, task}). A recent duplicate is reused."""
        documents.check_creation_extras(body)
        now = self.clock.now_ms(tenant)
        since = now - DUPLICATE_IMPORT_WINDOW_MS
        existing = await self.store.find_recent_import(tenant, body["url"], since)
        if existing is not None:
            tasks = await self.store.tasks_of_asset(existing.doc["id"])
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
        await self._save(Changes(assets=[row], tasks=[TaskRow(tenant, task)], events=events))
        self._spawn(row, self._run_import(row))
        return True, {"asset": asset, "task": {"id": task["id"]}}

    # -- receiving media ----------------------------------------------------------------

    async def receive_upload(self, token: str | None, chunks: AsyncIterator[bytes]) -> None:
        """A direct PUT: stream the body to disk, then schedule processing."""
        row, _ = await self.upload_target(token, via="direct")
        asset_id = row.doc["id"]
        # A retry may arrive before the server has noticed that the previous attempt's
        # connection died: it waits for that attempt to end (within the upload idle
        # timeout) instead of being refused. While held, tus creation is refused.
        async with self.blobs.writers.hold(asset_id):
            await self.upload_target(token, via="direct")  # still pending, now that we hold it
            received = await self.blobs.receive(chunks, asset_id)
            await self.media_arrived(asset_id, received)

    async def upload_target(
        self, token: str | None, via: Literal["direct", "tus"] | None = None
    ) -> tuple[AssetRow, TaskRow]:
        """The asset and pending upload task a signed upload token points at.

        `via` names the way bytes are about to come: one asset takes one upload, so a way
        is refused while the other is under way (else both would land, and the asset be
        processed, and its webhooks sent, twice). Studio has no such guard; its refusal
        of an upload that can no longer land is 422 (`asset has already been uploaded`),
        so these are 422 too, which tus-js-client gives up on rather than retrying (as it
        would a 409 or 423).
        """
        try:
            playback_id = self.tokens.verify(token)
        except InvalidToken as exc:
            raise Forbidden(f"Invalid signed upload URL: {exc}") from None
        row = await self.store.get_asset_by_playback_id(playback_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound("Asset not found")
        tasks = [
            t for t in await self.store.tasks_of_asset(row.doc["id"]) if t.doc["type"] == "upload"
        ]
        if (
            row.doc["status"]["phase"] != AssetPhase.UPLOADING.value
            or not tasks
            or tasks[0].doc["status"]["phase"] != TaskPhase.PENDING.value
        ):
            raise UnprocessableEntity("asset has already been uploaded")
        if via == "direct":
            # emulator/tus.py names an upload after the asset's playbackId.
            tus = await self.store.get_tus_upload(f"directUpload/{playback_id}")
            if (
                tus is not None
                and not tus.completed
                and tus.expires_at > self.clock.now_ms(tus.tenant)
            ):
                raise UnprocessableEntity(
                    "asset has a tus upload in progress: finish or terminate it"
                )
        elif via == "tus" and self.blobs.writers.busy(row.doc["id"]):
            raise UnprocessableEntity("asset has a direct upload in progress")
        return row, tasks[0]

    async def tenant_of_upload_token(
        self, token: str | None, tus_upload_id: str | None = None
    ) -> str | None:
        """Whose upload a signed token (or a tus upload) is for; None if unknown. Uploads
        carry no API key, yet the uploader's scenario should apply to them."""
        if token is None and tus_upload_id is not None:
            tus = await self.store.get_tus_upload(tus_upload_id)
            return tus.tenant if tus is not None else None
        try:
            playback_id = self.tokens.verify(token)
        except InvalidToken:
            return None
        row = await self.store.get_asset_by_playback_id(playback_id)
        return row.tenant if row is not None else None

    async def media_arrived(self, asset_id: str, received: ReceivedFile) -> None:
        """All bytes are on disk: the asset waits while they are hashed and probed in the
        background, so an upload is answered once its bytes are stored, as Studio's is."""
        row = await self._mark_arrived(asset_id, received)
        if row is None:
            return
        job = self._spawn(row, self._analyse(asset_id, received.path, _updated_at(row)))
        if isinstance(self.clock, ManualClock):
            # Time stands still until a test moves it: answer after the analysis, so what
            # the test reads next never depends on how fast this machine hashes.
            await asyncio.wait([job])

    async def _mark_arrived(self, asset_id: str, received: ReceivedFile) -> AssetRow | None:
        """Record the media file and queue the upload task; None if the asset is gone."""
        row = await self.store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            self.blobs.remove_asset_media(self.blobs.relative(received.path))
            return None
        task = (await self.store.tasks_of_asset(asset_id))[0]
        tenant = row.tenant
        now = self.clock.now_ms(tenant)
        row.media_path = self.blobs.relative(received.path)
        row.doc["status"] = {"phase": AssetPhase.WAITING.value, "updatedAt": now}
        changes = Changes(assets=[row], tasks=[task])
        if task.doc["status"]["phase"] == TaskPhase.PENDING.value:
            documents.schedule(task.doc, now)
            # Only the task: Studio writes this asset phase straight to the database.
            changes.events = make_events(tenant, now, [("task.updated", task.doc)])
        await self._save(changes)
        return row

    async def _analyse(self, asset_id: str, path: Path, arrived_at: int) -> None:
        """Hash and probe arrived media, then plan its processing from when it arrived."""
        digests: Digests | None = None
        try:
            digests = await blobs.digest(path)
            probe = await self.prober.probe(path)
        except OSError as exc:  # the disk failed under us, or the file went away
            probe = ProbeResult(error=f"Failed to read the uploaded file: {exc.strerror or exc}")
        row = await self.store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            return
        task = (await self.store.tasks_of_asset(asset_id))[0]
        steps = self._plan(row, task.doc, arrived_at, probe=probe, digests=digests)
        # Replaces any plan a stop cut short (Store.arrivals_in_flight finds those).
        await self.store.save(Changes(add_steps=steps, delete_steps_of_asset=asset_id))
        await self.scheduler.run_due(row.tenant)
        self.scheduler.wake()

    def _plan(
        self,
        row: AssetRow,
        task: Doc,
        now: int,
        *,
        probe: ProbeResult | None = None,
        digests: Digests | None = None,
        error: str | None = None,
    ) -> list[Step]:
        if probe is not None and not probe.ok:
            error = probe.error
        # The scenario in force when processing is planned decides its timing and faults.
        fault = None
        if error is None:
            source_url = row.doc["source"].get("url")
            fault = self.rules.processing_fault(row.tenant, row.doc.get("name"), source_url)
        duration = ((probe.video_spec or {}).get("duration") if probe else None) or 0.0
        planned = timeline.plan(
            self.rules.scenario_for(row.tenant).timeline,
            error=error,
            fault=fault,
            media_seconds=float(duration),
        )
        spec: Doc = {}
        if error is None and probe is not None and digests is not None:
            spec = {
                "size": digests.size,
                "hash": [
                    {"hash": digests.md5, "algorithm": "md5"},
                    {"hash": digests.sha256, "algorithm": "sha256"},
                ],
                "videoSpec": probe.video_spec,
                "type": probe.media_type,
            }
        return [
            Step(
                tenant=row.tenant,
                due_ms=now + p.offset_ms,
                asset_id=row.doc["id"],
                task_id=task["id"],
                kind=p.kind,
                data={
                    "progress": p.progress,
                    "error": p.error,
                    "spec": spec if p.kind is StepKind.READY else None,
                },
            )
            for p in planned
        ]

    # -- URL imports ----------------------------------------------------------------------

    def _spawn(self, row: AssetRow, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run an asset's background work where settle, delete, reset and stop can see it."""
        asset_id = row.doc["id"]
        return self._jobs.spawn(row.tenant, asset_id, self._guarded(asset_id, work))

    async def _guarded(self, asset_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Background work that dies (a bug, a full disk) must not leave its asset waiting
        forever: the asset fails instead, with a message saying so. Recording the failure
        is retried while the store cannot write (a full disk), until it can."""
        try:
            await work
            return
        except Exception as exc:
            log.exception("background work on asset %s failed", asset_id)
            error = f"internal error while processing the file: {type(exc).__name__}: {exc}"
        pause = 1.0
        while True:
            try:
                await self._fail_processing(asset_id, error)
                return
            except Exception:
                log.exception("recording the failure of asset %s failed; retrying", asset_id)
            await real_delay(pause)
            pause = min(pause * 2, 30.0)

    async def _run_import(self, row: AssetRow) -> None:
        url = row.doc["source"]["url"]
        limits = self.import_limits
        injected = self.rules.import_error(row.tenant, row.doc.get("name"), url)
        if injected is not None:  # a scenario's import fault: fail as the download would
            await self._fail_processing(row.doc["id"], injected)
            return
        try:
            received = await fetch.download(
                url, self.blobs, row.doc["id"], max_bytes=limits.max_bytes, timeout=limits.timeout
            )
        except fetch.DownloadFailed as exc:
            await self._fail_processing(row.doc["id"], str(exc))
            return
        # Already this asset's background job: analyse here rather than in a new one.
        arrived = await self._mark_arrived(row.doc["id"], received)
        if arrived is not None:
            await self._analyse(row.doc["id"], received.path, _updated_at(arrived))

    async def _fail_processing(self, asset_id: str, error: str) -> None:
        """Plan the asset's failure with `error` (a download that failed, or a job that died)."""
        row = await self.store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            return
        task = (await self.store.tasks_of_asset(asset_id))[0]
        now = self.clock.now_ms(row.tenant)
        steps = self._plan(row, task.doc, now, error=error)
        await self.store.save(Changes(add_steps=steps, delete_steps_of_asset=asset_id))
        await self.scheduler.run_due(row.tenant)
        self.scheduler.wake()

    async def settle(self, tenant: str | None = None) -> None:
        """Wait for the tenant's downloads and analyses in flight, so that time moves
        deterministically."""
        await self._jobs.settle(tenant)

    # -- applying planned steps ---------------------------------------------------------

    async def _save(self, changes: Changes) -> None:
        """Store a transition with its events (one transaction), then have them sent."""
        await self.store.save(changes)
        if changes.events:
            self.events.notify()

    async def apply_step(self, step: Step) -> None:
        changes = Changes(delete_steps=[step.seq] if step.seq is not None else [])
        row = await self.store.get_asset(step.asset_id)
        task = await self.store.get_task(step.task_id)
        if row is None or task is None or row.doc.get("deleted"):
            await self.store.save(changes)
            return
        asset, task_doc = row.doc, task.doc
        if documents.apply_step(step, asset, task_doc):
            changes.assets.append(row)
        changes.tasks.append(task)
        now = self.clock.now_ms(step.tenant)
        changes.events = make_events(step.tenant, now, step_events(step.kind, asset, task_doc))
        await self._save(changes)

    # -- reading and changing assets ----------------------------------------------------

    async def _owned_asset(self, tenant: str, asset_id: str, missing: str) -> AssetRow:
        row = await self.store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound(missing)
        if row.tenant != tenant:
            raise NotFound("not found")
        return row

    async def get_asset(self, tenant: str, asset_id: str) -> Doc:
        return (await self._owned_asset(tenant, asset_id, "Asset not found")).doc

    async def list_assets(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self.store.list_assets(tenant, query)

    async def update_asset(self, tenant: str, asset_id: str, patch: Doc) -> Doc:
        row = await self._owned_asset(tenant, asset_id, "asset not found")
        asset = row.doc
        if asset["status"]["phase"] != AssetPhase.READY.value:
            raise UnprocessableEntity("asset is not ready")
        documents.apply_patch(asset, patch)
        now = self.clock.now_ms(tenant)
        asset["status"] = {**asset["status"], "updatedAt": now}
        events = make_events(tenant, now, [("asset.updated", asset)])
        await self._save(Changes(assets=[row], events=events))
        return asset

    async def delete_asset(self, tenant: str, asset_id: str) -> None:
        row = await self._owned_asset(tenant, asset_id, "Asset not found")
        now = self.clock.now_ms(tenant)
        # Made now: the event carries the asset as it was before deletion.
        events = make_events(tenant, now, [("asset.deleted", row.doc)])
        self._jobs.cancel(asset_id)
        row.doc.update(deleted=True, deletedAt=now)
        row.doc["status"] = {"phase": AssetPhase.DELETING.value, "updatedAt": now}
        # Files first: on a full disk that frees space for the database to commit in.
        self.blobs.remove_asset_media(row.media_path)
        row.media_path = None
        await self._save(Changes(assets=[row], delete_steps_of_asset=asset_id, events=events))

    # -- tasks ----------------------------------------------------------------------------

    async def get_task(self, tenant: str, task_id: str) -> Doc:
        task = await self.store.get_task(task_id)
        if task is None or task.tenant != tenant:
            raise NotFound("not found")
        return task.doc

    async def list_tasks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self.store.list_tasks(tenant, query)

    # -- playback -------------------------------------------------------------------------

    async def playable(self, playback_id: str) -> tuple[Doc, Path]:
        """A ready asset by playbackId and its media file, as playback info and media need."""
        row = await self.store.get_asset_by_playback_id(playback_id)
        if row is None or row.doc.get("deleted"):
            raise NotFound(f"No playback URL found for {playback_id}")
        if row.doc["status"]["phase"] != AssetPhase.READY.value or not row.media_path:
            raise UnprocessableEntity("asset is not ready for playback")
        return row.doc, self.blobs.resolve(row.media_path)

    # -- control plane --------------------------------------------------------------------

    async def reset(self, tenant: str | None) -> None:
        self.rules.forget(tenant)
        self._jobs.cancel_tenant(tenant)
        for hook in self.reset_hooks:
            await hook(tenant)
        for relative in await self.store.reset(tenant):
            self.blobs.remove_asset_media(relative)
        if isinstance(self.clock, ManualClock):
            self.clock.forget(tenant)
            await self._save_clock()

    async def advance(self, seconds: float, tenant: str | None) -> int:
        await self.settle(tenant)
        applied = await self.scheduler.advance(round(seconds * 1000), tenant)
        await self._save_clock()
        for hook in self.clock_hooks:
            await hook(tenant)
        return applied

    async def _save_clock(self) -> None:
        if isinstance(self.clock, ManualClock):
            await self.store.set_meta(CLOCK_META_KEY, json.dumps(self.clock.state()))


def _updated_at(row: AssetRow) -> int:
    updated: int = row.doc["status"]["updatedAt"]
    return updated
