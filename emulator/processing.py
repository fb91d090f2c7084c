"""Processing: from media on disk to a `ready` (or `failed`) asset.

Media that arrived (a direct PUT, a tus upload, a URL import) is hashed and probed as the
asset's background job; then the timeline plans its processing as timed steps, stored, and
run by the scheduler (this is the scheduler's "processing steps" TimedWork). What each
step writes into the documents is emulator/documents.py's.

Playable outputs (HLS, MP4s, thumbnails: emulator/outputs.py) are made by ffmpeg in the
same background job, once the plan is stored. The plan's timing is the scenario's, but
its steps never run ahead of ffmpeg: while an asset's outputs are being made, progress
past what ffmpeg has done, source playback and `ready` are held back (`_held`). On the
manual clock this never shows: moving time waits for the job (`settle`) first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from emulator import blobs, documents, fetch, renditions, timeline
from emulator.blobs import Blobs
from emulator.clock import real_delay
from emulator.errors import InsufficientStorage
from emulator.events import EventSink, make_events, save_with_events, step_events
from emulator.exports import ExportedFiles, Exports
from emulator.keyed import KeyedJobs
from emulator.media import EncodeFailed
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
from emulator.outputs import OutputFiles
from emulator.renditions import OutputPlan
from emulator.rulebook import Rulebook
from emulator.scheduler import Scheduler
from emulator.store import AssetRow, Changes, Store

log = logging.getLogger(__name__)


class ImportLimits(NamedTuple):
    max_bytes: int
    timeout: float


class Processing:
    def __init__(
        self,
        *,
        store: Store,
        blobs: Blobs,
        outputs: OutputFiles,
        outputs_mode: str,
        scheduler: Scheduler,
        rules: Rulebook,
        events: EventSink,
        import_limits: ImportLimits,
        exports: Exports,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._outputs = outputs
        self._outputs_mode = outputs_mode  # unless the tenant's scenario says otherwise
        self._scheduler = scheduler
        self._rules = rules
        self._events = events
        self._import_limits = import_limits
        self._exports = exports
        # Background work per asset that moving time must wait for: a URL download, or
        # hashing and probing media that arrived; by asset id.
        self._jobs = KeyedJobs()
        # How much of each asset's outputs ffmpeg has made (0..1), while it runs; by id.
        self._making: dict[str, float] = {}
        # A seed file's `failed` assets: the fault their plan gets instead of the
        # scenario's, so they fail by the same steps as a scenario's failure; by id.
        self._seeded_faults: dict[str, timeline.ProcessingFault] = {}

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Resume what a stop cut short: downloads, analyses with no complete plan, and
        outputs that were being made (the analysis runs again, from the cache)."""
        for row in await self._store.imports_in_flight():
            self._spawn(row, self._run_import(row))
        unfinished = await self._store.arrivals_in_flight()
        for row in await self._store.readiness_in_flight():
            path = self._blobs.resolve(row.media_path or "")
            if self._mode(row) != "none" and self._outputs.files(path) is None:
                unfinished.append(row)
        for row in unfinished:
            path = self._blobs.resolve(row.media_path or "")
            self._spawn(row, self._analyse(row.doc["id"], path, _updated_at(row)))

    async def stop(self) -> None:
        await self._jobs.stop()

    # -- what starts processing ---------------------------------------------------------

    def start_import(self, row: AssetRow) -> None:
        """Download a URL import's source in the background, then process it."""
        self._spawn(row, self._run_import(row))

    async def media_arrived(self, asset_id: str, received: ReceivedFile) -> None:
        """All bytes are on disk: the asset waits while they are hashed and probed in the
        background, so an upload is answered once its bytes are stored, as Studio's is."""
        row = await self._mark_arrived(asset_id, received)
        if row is None:
            return
        job = self._spawn(row, self._analyse(asset_id, received.path, _updated_at(row)))
        await self._scheduler.hold_answer_for(job)

    def cancel(self, asset_id: str) -> None:
        self._jobs.cancel(asset_id)

    # -- seeding (emulator/seeding.py) --------------------------------------------------

    def plan_fault(self, asset_id: str, fault: timeline.ProcessingFault) -> None:
        """The fault the asset's coming plan gets, whatever the scenario says."""
        self._seeded_faults[asset_id] = fault

    async def run_now(self, asset_id: str, until: str | None = None) -> int:
        """Apply the asset's planned steps at once, in order, whatever their due times,
        until its phase is `until` (None: every step). A seeded asset starts the server
        in its phase without anyone moving the clock, through the same steps (and events)
        as any asset. Call it once the asset's background job has settled, before the
        scheduler's loop runs (nothing else applies these steps meanwhile)."""
        applied = 0
        while True:
            row = await self._store.get_asset(asset_id)
            if row is None or row.doc["status"]["phase"] == until:
                return applied
            steps = await self._store.steps(row.tenant)
            mine = [s for s in self._runnable(steps) if s.asset_id == asset_id]
            if not mine:
                return applied
            # Done now: the documents' times are the clock's, not the plan's future ones.
            mine[0].due_ms = min(mine[0].due_ms, self._scheduler.now_ms(row.tenant))
            await self._apply_step(mine[0])
            applied += 1

    def cancel_tenant(self, tenant: str | None) -> None:
        self._jobs.cancel_tenant(tenant)

    # -- the scheduler's TimedWork ------------------------------------------------------

    async def settle(self, tenant: str | None = None) -> None:
        """Wait for the tenant's downloads and analyses in flight."""
        await self._jobs.settle(tenant)

    async def due_times(self, tenant: str | None) -> Sequence[tuple[str, int]]:
        return [(s.tenant, s.due_ms) for s in self._runnable(await self._store.steps(tenant))]

    async def run_due(self, tenant: str | None, deadline: float) -> int:
        applied = 0
        for step in self._runnable(await self._store.steps(tenant)):
            if step.due_ms <= self._scheduler.now_ms(step.tenant):
                await self._apply_step(step)
                applied += 1
        return applied

    def _runnable(self, steps: Sequence[Step]) -> list[Step]:
        """The steps not held back by outputs still being made. An asset's later steps
        wait behind its first held one, so its steps still run in order; source playback
        is the exception: progress goes on without it (it comes, late, with `ready`)."""
        waiting: set[str] = set()
        runnable = []
        for step in steps:
            if step.asset_id in waiting:
                continue
            if not self._held(step):
                runnable.append(step)
            elif step.kind is not StepKind.SOURCE_READY:
                waiting.add(step.asset_id)
        return runnable

    def _held(self, step: Step) -> bool:
        made = self._making.get(step.asset_id)
        if made is None:
            return False
        if step.kind in (StepKind.SOURCE_READY, StepKind.READY):
            return True
        return step.kind is StepKind.PROGRESS and float(step.data.get("progress") or 0) > made

    def _made(self, asset_id: str, fraction: float) -> None:
        """ffmpeg's progress: steps it held back may run now."""
        before = self._making.get(asset_id)
        if before is not None and fraction >= before + 0.05:
            self._making[asset_id] = fraction
            self._scheduler.wake()

    # -- internals ----------------------------------------------------------------------

    async def _mark_arrived(self, asset_id: str, received: ReceivedFile) -> AssetRow | None:
        """Record the media file and queue the upload task; None if the asset is gone."""
        row = await self._store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            self._blobs.remove_asset_media(self._blobs.relative(received.path))
            return None
        task = (await self._store.tasks_of_asset(asset_id))[0]
        tenant = row.tenant
        now = self._scheduler.now_ms(tenant)
        row.media_path = self._blobs.relative(received.path)
        row.doc["status"] = {"phase": AssetPhase.WAITING.value, "updatedAt": now}
        changes = Changes(assets=[row], tasks=[task])
        if task.doc["status"]["phase"] == TaskPhase.PENDING.value:
            documents.schedule(task.doc, now)
            # Only the task: Studio writes this asset phase straight to the database.
            changes.events = make_events(tenant, now, [("task.updated", task.doc)])
        await save_with_events(self._store, self._events, changes)
        return row

    async def _analyse(self, asset_id: str, path: Path, arrived_at: int) -> None:
        """Hash and probe arrived media, then plan its processing from when it arrived."""
        digests: Digests | None = None
        ipfs: Doc | None = None
        try:
            digests = await blobs.digest(path)
            probe = await self._outputs.probe(path, digests.sha256)
            if probe.ok:
                ipfs = await self._pin_on_upload(asset_id)
        except OSError as exc:  # the disk failed under us, or the file went away
            probe = ProbeResult(error=f"Failed to read the uploaded file: {exc.strerror or exc}")
        plan = await self._plan_processing(
            asset_id, arrived_at, probe=probe, digests=digests, ipfs=ipfs
        )
        if plan is not None and digests is not None:
            await self._make_outputs(asset_id, path, digests.sha256, plan)

    async def _pin_on_upload(self, asset_id: str) -> Doc | None:
        """An asset created with `storage.ipfs` is pinned by its upload task (task-runner),
        not by an export: its CIDs are made here, in the background job, so that `ready`
        only writes them (the READY step's data)."""
        row = await self._store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            return None
        spec = ((row.doc.get("storage") or {}).get("ipfs") or {}).get("spec")
        if not isinstance(spec, dict):
            return None
        files = await self._exports.export_files(row, spec)
        return files.step_data(spec)

    async def _make_outputs(
        self, asset_id: str, source: Path, sha256: str, plan: OutputPlan
    ) -> None:
        """ffmpeg makes the asset's outputs (or the cache has them); a failure replaces
        the asset's plan with its failure, naming the step that failed."""
        try:
            await self._outputs.make(source, sha256, plan, lambda f: self._made(asset_id, f))
        except EncodeFailed as exc:
            self._making.pop(asset_id, None)  # the failure's steps are not held back
            await self._fail_processing(asset_id, str(exc))
            return
        finally:
            self._making.pop(asset_id, None)
        row = await self._store.get_asset(asset_id)
        if row is not None:
            await self._scheduler.poke(row.tenant)

    async def _fail_processing(self, asset_id: str, error: str) -> None:
        """Plan the asset's failure with `error` (a download that failed, or a job that died)."""
        await self._plan_processing(asset_id, None, error=error)

    async def _plan_processing(
        self,
        asset_id: str,
        since: int | None,
        *,
        probe: ProbeResult | None = None,
        digests: Digests | None = None,
        error: str | None = None,
        ipfs: Doc | None = None,
    ) -> OutputPlan | None:
        """Store the asset's plan, timed from `since` (None: now), replacing any plan a
        stop cut short (Store.arrivals_in_flight finds those). Returns the outputs to
        make when the plan ends `ready` and the asset gets outputs."""
        row = await self._store.get_asset(asset_id)
        if row is None or row.doc.get("deleted"):
            return None
        task = (await self._store.tasks_of_asset(asset_id))[0]
        start = self._scheduler.now_ms(row.tenant) if since is None else since
        outputs = None
        if error is None and probe is not None and probe.video_spec is not None:
            outputs = renditions.plan_outputs(
                probe.video_spec,
                self._mode(row),
                profiles=row.doc.get("profiles"),
                static_mp4=row.doc.get("staticMp4"),
            )
        steps = self._plan(
            row,
            task.doc,
            start,
            probe=probe,
            digests=digests,
            error=error,
            source_ready=outputs is not None,
            ipfs=ipfs,
        )
        if outputs is not None and any(s.kind is StepKind.READY for s in steps):
            self._making[asset_id] = 0.0  # before the steps exist: none may run early
        else:
            outputs = None
        try:
            await self._store.save(Changes(add_steps=steps, delete_steps_of_asset=asset_id))
        except BaseException:
            self._making.pop(asset_id, None)
            raise
        await self._scheduler.poke(row.tenant)
        return outputs

    def _mode(self, row: AssetRow) -> str:
        """copy, transcode or none: the tenant's scenario's, else the server's setting."""
        return self._rules.scenario_for(row.tenant).outputs or self._outputs_mode

    def _plan(
        self,
        row: AssetRow,
        task: Doc,
        now: int,
        *,
        probe: ProbeResult | None = None,
        digests: Digests | None = None,
        error: str | None = None,
        source_ready: bool = False,
        ipfs: Doc | None = None,
    ) -> list[Step]:
        if probe is not None and not probe.ok:
            error = probe.error
        # The scenario in force when processing is planned decides its timing and faults.
        fault = self._seeded_faults.pop(row.doc["id"], None)
        if error is None and fault is None:
            source_url = row.doc["source"].get("url")
            fault = self._rules.processing_fault(row.tenant, row.doc.get("name"), source_url)
        duration = ((probe.video_spec or {}).get("duration") if probe else None) or 0.0
        planned = timeline.plan(
            self._rules.scenario_for(row.tenant).timeline,
            error=error,
            fault=fault,
            media_seconds=float(duration),
            source_ready=source_ready,
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
                    **({"ipfs": ipfs} if ipfs and p.kind is StepKind.READY else {}),
                },
            )
            for p in planned
        ]

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
            if isinstance(exc, InsufficientStorage):
                log.warning("background work on asset %s: the disk is full", asset_id)
            else:
                log.exception("background work on asset %s failed", asset_id)
            error = f"internal error while processing the file: {type(exc).__name__}: {exc}"
        pause = 1.0
        while True:
            try:
                await self._fail_processing(asset_id, error)
                return
            except InsufficientStorage:  # expected on a full disk: no traceback each time
                log.warning("recording the failure of asset %s: disk full; retrying", asset_id)
            except Exception:
                log.exception("recording the failure of asset %s failed; retrying", asset_id)
            await real_delay(pause)
            pause = min(pause * 2, 30.0)

    async def _run_import(self, row: AssetRow) -> None:
        url = row.doc["source"]["url"]
        limits = self._import_limits
        injected = self._rules.import_error(row.tenant, row.doc.get("name"), url)
        if injected is not None:  # a scenario's import fault: fail as the download would
            await self._fail_processing(row.doc["id"], injected)
            return
        try:
            received = await fetch.download(
                url, self._blobs, row.doc["id"], max_bytes=limits.max_bytes, timeout=limits.timeout
            )
        except fetch.DownloadFailed as exc:
            await self._fail_processing(row.doc["id"], str(exc))
            return
        # Already this asset's background job: analyse here rather than in a new one.
        arrived = await self._mark_arrived(row.doc["id"], received)
        if arrived is not None:
            await self._analyse(row.doc["id"], received.path, _updated_at(arrived))

    async def _apply_step(self, step: Step) -> None:
        changes = Changes(delete_steps=[step.seq] if step.seq is not None else [])
        row = await self._store.get_asset(step.asset_id)
        task = await self._store.get_task(step.task_id)
        if row is None or task is None or row.doc.get("deleted"):
            await self._store.save(changes)
            return
        asset, task_doc = row.doc, task.doc
        if step.kind in (StepKind.SOURCE_READY, StepKind.READY) and row.media_path:
            # What ffmpeg made (none on `--outputs none`: playback serves the source).
            files = self._outputs.files(self._blobs.resolve(row.media_path))
            step.data["files"] = files
        if documents.apply_step(step, asset, task_doc):
            changes.assets.append(row)
        changes.tasks.append(task)
        now = self._scheduler.now_ms(step.tenant)
        changes.events = make_events(step.tenant, now, step_events(step.kind, asset, task_doc))
        exported = ExportedFiles.from_step_data(step.data.get("ipfs"))
        if step.kind is StepKind.READY and exported is not None:
            # The upload pinned the asset (storage.ipfs on create): on the gateway from now.
            pinned = exported.pinned(row.tenant, asset["id"])
            await self._store.save_export(changes, pinned=pinned)
            self._events.notify()
        else:
            await save_with_events(self._store, self._events, changes)


def _updated_at(row: AssetRow) -> int:
    updated: int = row.doc["status"]["updatedAt"]
    return updated
