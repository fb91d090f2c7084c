"""IPFS export: `PATCH /api/asset/{id} {"storage": {"ipfs": ...}}` and its `export` task.

What Studio does, and so this module (Studio: controllers/asset.ts `storageInputToState`,
`reconcileAssetStorage`; task/scheduler.ts `processTaskEvent`, `failTask`;
controllers/task.ts `POST /:id/status`; task-runner task/export.go):

- A PATCH whose `storage.ipfs` spec differs from the asset's creates an `export` task
  (`inputAssetId`, `params.export.ipfs` = the spec; `task.spawned`, then `task.updated`
  as it is queued) and answers with `storage.status = {phase: "waiting", tasks: {pending}}`.
  A spec of `false`/`null` where one exists is 400 `Cannot remove asset from IPFS`.
- The task runs on the timeline like an upload task (the scenario's timing; its faults
  from `export:` rules). Each progress report updates the task and, while it is still the
  asset's pending export, `storage.status` (`processing`, `progress`).
- When it completes, the asset gets `storage.ipfs.{cid, nftMetadata.cid, updatedAt}` and
  `storage.status = {phase: "ready", tasks: {last}}` (`asset.updated`), then the task
  `completed` with `output.export.ipfs.{videoFileCid, nftMetadataCid}`. When it fails,
  the task first, then `storage.status` `failed` (or `reverted` to the last export's spec).
- The exported file is the asset's source file (the bytes its downloadUrl serves); its
  CID is computed as IPFS would (emulator/cid.py). The NFT metadata JSON (task-runner's
  `file` or `player` template, deep-merged with `spec.nftMetadata`) is "pinned" too.
  Both are served by the local gateway at `/ipfs/<cid>` (routes/ipfs.py).
- `storage` given on create is only a spec; the upload task pins the file itself (no
  export task): processing makes the files here (`export_files`) in the asset's background
  job, and `ready` writes them as processTaskEvent ("upload") does:
  `{...assetSpec.storage, status: {phase: "ready", tasks: {last: <upload task>}}}`.

Export steps are this module's own timed work (registered with the scheduler in app.py),
kept in their own table: an export runs on an asset that is already ready, and processing
reads its `steps` as the asset's processing plan. The plan itself is the timeline's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

from emulator import documents, timeline
from emulator.blobs import Blobs
from emulator.errors import BadRequest
from emulator.events import EventSink, make_events
from emulator.models import Doc, Event, Step, StepKind, TaskPhase, new_id
from emulator.rulebook import Rulebook
from emulator.scheduler import Scheduler
from emulator.store import AssetRow, Changes, PinnedFile, PinnedFound, Store, TaskRow

# task-runner task/export.go and its flags' defaults: the image every NFT gets, and the
# player the `player` template embeds.
LIVEPEER_LOGO_URL = "ipfs://bafkreidmlgpjoxgvefhid2xjyqjnpmjjmq47yyrcm6ifvoovclty7sm4wm"
PLAYER_IMMUTABLE_URL = "ipfs://bafybeihza7ss7ebsxqud4kcqjizygkv2uyfixfqlwl6cboavj2anvlfn3i/"
PLAYER_EXTERNAL_URL = "https://lvpr.tv/"
# Studio's playback.ts: assets made after this are found by CID only by their owner
# (or from the embeddable player's origin).
CROSS_USER_ASSETS_CUTOFF_DATE = 1686009600000  # 2023-06-06T00:00:00Z
EMBEDDABLE_PLAYER_SUFFIX = "lvpr.tv"


@dataclass
class ExportStart:
    """What a PATCH that starts an export writes beside the asset."""

    task: TaskRow
    events: list[Event]  # task.spawned, task.updated: before the asset's asset.updated
    steps: list[Step] = field(default_factory=list)


class ExportedFiles(NamedTuple):
    """An asset's source file and its NFT metadata as pinning them gives them: the
    export task's output, and the upload task's when the asset was created with a spec."""

    video_cid: str
    metadata: bytes  # the NFT metadata JSON, pinned with its bytes

    @property
    def metadata_cid(self) -> str:
        from emulator import cid  # here, not at the top: multiformats costs ~40 ms of start

        return cid.bytes_cid(self.metadata)

    def pinned(self, tenant: str, asset_id: str) -> list[PinnedFile]:
        """What the local gateway serves: the media file by reference, the JSON whole."""
        return [
            PinnedFile(self.video_cid, tenant, asset_id),
            PinnedFile(self.metadata_cid, tenant, asset_id, self.metadata),
        ]

    def ipfs(self, spec: Any) -> Doc:
        """`storage.ipfs` as the task-runner reports it (Studio adds the URLs on the way out)."""
        return {"spec": spec, "cid": self.video_cid, "nftMetadata": {"cid": self.metadata_cid}}

    def step_data(self, spec: Any) -> Doc:
        """Kept in a planned step (JSON): the upload's `assetSpec.storage`, and the
        metadata to pin when the step is applied."""
        return {
            "storage": {"ipfs": self.ipfs(spec)},
            "nftMetadata": self.metadata.decode("utf-8"),
        }

    @classmethod
    def from_step_data(cls, data: Any) -> ExportedFiles | None:
        if not isinstance(data, dict):
            return None
        video_cid = data["storage"]["ipfs"]["cid"]
        return cls(video_cid, str(data["nftMetadata"]).encode("utf-8"))


class Exports:
    def __init__(
        self,
        *,
        store: Store,
        blobs: Blobs,
        scheduler: Scheduler,
        rules: Rulebook,
        events: EventSink,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._scheduler = scheduler
        self._rules = rules
        self._events = events
        # CIDs already computed, by (file, size, mtime): an unchanged file is read once.
        self._cids: dict[tuple[str, int, int], str] = {}

    # -- what a PATCH starts ------------------------------------------------------------

    def reconcile(self, row: AssetRow, storage_input: Any, now: int) -> ExportStart | None:
        """Apply a PATCH's `storage` to the asset (Studio's storageInputToState, then
        reconcileAssetStorage); the export it starts, if the spec changed."""
        if not isinstance(storage_input, dict) or "ipfs" not in storage_input:
            return None
        ipfs = storage_input["ipfs"]
        # An object, even an empty one, is truthy in JS: its spec (default {}) is asked for.
        new_spec: Doc | None = (
            ipfs.get("spec", {}) if isinstance(ipfs, dict) else ({} if ipfs else None)
        )
        asset = row.doc
        storage: Doc = asset.get("storage") or {}
        current = (storage.get("ipfs") or {}).get("spec")
        if new_spec == current:
            return None
        if new_spec is None:
            raise BadRequest("Cannot remove asset from IPFS")
        task = _new_export_task(asset, new_spec, now)
        spawned = make_events(row.tenant, now, [("task.spawned", task)])
        documents.schedule(task, now)
        queued = make_events(row.tenant, now, [("task.updated", task)])
        pending = {**((storage.get("status") or {}).get("tasks") or {}), "pending": task["id"]}
        asset["storage"] = {
            **storage,
            "ipfs": {**(storage.get("ipfs") or {}), "spec": new_spec},
            "status": {"phase": "waiting", "tasks": pending},
        }
        start = ExportStart(TaskRow(row.tenant, task), spawned + queued)
        start.steps = self._plan(row, task["id"], now)
        return start

    async def save(self, changes: Changes, start: ExportStart | None) -> None:
        """Store a PATCH's changes with the export it started (one transaction), then
        have its events delivered and its due steps run."""
        if start is None:
            await self._store.save(changes)
        else:
            changes.tasks.append(start.task)
            changes.events = start.events + changes.events
            await self._store.save_export(changes, add_steps=start.steps)
        if changes.events:
            self._events.notify()
        if start is not None:
            await self._scheduler.poke(start.task.tenant)

    def _plan(self, row: AssetRow, task_id: str, now: int) -> list[Step]:
        scenario = self._rules.scenario_for(row.tenant)
        fault = self._rules.export_fault(
            row.tenant, row.doc.get("name"), row.doc["source"].get("url")
        )
        return [
            Step(
                tenant=row.tenant,
                due_ms=now + p.offset_ms,
                asset_id=row.doc["id"],
                task_id=task_id,
                kind=p.kind,
                data={"progress": p.progress, "error": p.error},
            )
            for p in timeline.plan(scenario.timeline, fault=fault)
        ]

    # -- what the gateway and playback find ---------------------------------------------

    async def pinned(self, content_id: str) -> tuple[PinnedFound, Path | None] | None:
        """A file an export pinned, of an asset that still exists: its stored bytes, or
        the path of the asset's media file."""
        found = await self._store.pinned_file(content_id)
        if found is None:
            return None
        if found.content is not None:
            return found, None
        if not found.asset.media_path:
            return None
        return found, self._blobs.resolve(found.asset.media_path)

    async def asset_by_cid(
        self, content_id: str, tenant: str | None, *, origin: str | None = None
    ) -> AssetRow | None:
        """Studio's getByIpfsCid as playback info uses it: the caller's own ready asset
        with that exported CID first; another account's only if it was made before the
        cross-account cutoff, unless the request comes from the embeddable player."""
        from emulator import cid  # here, not at the top: multiformats costs ~40 ms of start

        if not cid.is_cid(content_id):
            return None
        rows = await self._store.assets_by_ipfs_cid(content_id)
        own = [r for r in rows if tenant is not None and r.tenant == tenant]
        if own:
            return own[0]
        if origin is not None and _embeddable_player(origin):
            return rows[0] if rows else None
        old = [r for r in rows if r.doc["createdAt"] < CROSS_USER_ASSETS_CUTOFF_DATE]
        return old[0] if old else None

    # -- the scheduler's TimedWork ------------------------------------------------------

    async def settle(self, tenant: str | None = None) -> None:
        """Nothing runs in the background: a step's work is done when it is applied."""

    async def due_times(self, tenant: str | None) -> Sequence[tuple[str, int]]:
        return [(s.tenant, s.due_ms) for s in await self._store.export_steps(tenant)]

    async def run_due(self, tenant: str | None, deadline: float) -> int:
        applied = 0
        for step in await self._store.export_steps(tenant):
            if step.due_ms <= self._scheduler.now_ms(step.tenant):
                await self._apply(step)
                applied += 1
        return applied

    async def _apply(self, step: Step) -> None:
        done = [step.seq] if step.seq is not None else []
        row = await self._store.get_asset(step.asset_id)
        task = await self._store.get_task(step.task_id)
        if row is None or task is None or row.doc.get("deleted"):
            await self._store.delete_export_steps(done)
            return
        asset, doc, at = row.doc, task.doc, step.due_ms
        storage: Doc = asset.get("storage") or {}
        status: Doc = storage.get("status") or {}
        tasks: Doc = status.get("tasks") or {}
        current = tasks.get("pending") == doc["id"]  # not replaced by a later PATCH
        retries = doc["status"].get("retries", 0)
        named: list[tuple[str, Doc]] = []
        pinned: list[PinnedFile] = []
        if step.kind in (StepKind.START, StepKind.PROGRESS):
            progress = float(step.data.get("progress") or 0.0)
            doc["status"] = {
                "phase": TaskPhase.RUNNING.value,
                "updatedAt": at,
                "retries": retries,
                "progress": progress,
            }
            named.append(("task.updated", doc))
            if current:
                shown = max(progress, float(status.get("progress") or 0.0))
                storage["status"] = {"phase": "processing", "progress": shown, "tasks": tasks}
                named.append(("asset.updated", _touched(asset, storage, at)))
        elif step.kind is StepKind.RETRY:
            doc["status"] = {
                "phase": TaskPhase.WAITING.value,
                "updatedAt": at,
                "retries": retries + 1,
                "errorMessage": str(step.data.get("error") or "export failed"),
            }
            named.append(("task.updated", doc))
        elif step.kind is StepKind.READY:
            spec = ((doc.get("params") or {}).get("export") or {}).get("ipfs") or {}
            files = await self.export_files(row, spec)
            pinned = files.pinned(row.tenant, asset["id"])
            if current:  # the asset first, then the task (task/scheduler.ts)
                asset_spec = (storage.get("ipfs") or {}).get("spec")
                storage["ipfs"] = {**files.ipfs(asset_spec), "updatedAt": at}
                storage["status"] = {"phase": "ready", "tasks": {"last": doc["id"]}}
                named.append(("asset.updated", _touched(asset, storage, at)))
            doc["status"] = {"phase": TaskPhase.COMPLETED.value, "updatedAt": at}
            exported = {"videoFileCid": files.video_cid, "nftMetadataCid": files.metadata_cid}
            doc["output"] = {"export": {"ipfs": exported}}
            named += [("task.updated", doc), ("task.completed", doc)]
        else:  # FAIL: the task first, then the asset (task/scheduler.ts failTask)
            error = str(step.data.get("error") or "export failed")
            doc["status"] = {
                "phase": TaskPhase.FAILED.value,
                "updatedAt": at,
                "errorMessage": error,
                "retries": retries,
            }
            named += [("task.updated", doc), ("task.failed", doc)]
            if current:
                previous = await self._previous_spec(tasks.get("last"))
                ipfs = storage.get("ipfs") or {}
                storage["ipfs"] = {**ipfs, "spec": previous if previous else ipfs.get("spec")}
                failed: Doc = {"failed": doc["id"]}
                if tasks.get("last"):
                    failed = {"last": tasks["last"], **failed}
                storage["status"] = {
                    "phase": "reverted" if previous else "failed",
                    "errorMessage": error,
                    "tasks": failed,
                }
                named.append(("asset.updated", _touched(asset, storage, at)))
        changes = Changes(tasks=[task])
        if any(name.startswith("asset.") for name, _ in named):
            changes.assets.append(row)
        changes.events = make_events(step.tenant, self._scheduler.now_ms(step.tenant), named)
        await self._store.save_export(changes, delete_steps=done, pinned=pinned)
        self._events.notify()

    async def _previous_spec(self, last_task_id: Any) -> Doc | None:
        """The spec of the asset's last export that succeeded, if its last was an export."""
        if not isinstance(last_task_id, str):
            return None
        last = await self._store.get_task(last_task_id)
        params = (last.doc.get("params") or {}).get("export") if last else None
        spec = params.get("ipfs") if isinstance(params, dict) else None
        return spec if isinstance(spec, dict) else None

    async def export_files(self, row: AssetRow, spec: Doc) -> ExportedFiles:
        """The CID of the asset's source file and the NFT metadata JSON that names it,
        made with `spec` (task-runner's export; its upload does the same when the asset
        was created with `storage.ipfs`). Reads the whole file, off the event loop."""
        path = self._blobs.resolve(row.media_path or "")
        video_cid = await self._file_cid(path)
        return ExportedFiles(video_cid, nft_metadata(row.doc, video_cid, spec))

    async def _file_cid(self, path: Path) -> str:
        from emulator import cid  # here, not at the top: multiformats costs ~40 ms of start

        # Hashing a large file takes a while: off the event loop, and once per version.
        stat = await asyncio.to_thread(path.stat)
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        found = self._cids.get(key)
        if found is None:
            found = self._cids[key] = await asyncio.to_thread(cid.file_cid, path)
        return found


def nft_metadata(asset: Doc, video_cid: str, spec: Doc) -> bytes:
    """task-runner's NFT metadata (export.go nftMetadata + mergeJson), as Go's
    json.Marshal writes it: keys sorted, no spaces, <, > and & escaped."""
    video_url = f"ipfs://{video_cid}"
    name = asset.get("name") or ""
    metadata: Doc = {
        "name": name,
        "description": f"Livepeer video from asset {json.dumps(name, ensure_ascii=False)}",
        "image": LIVEPEER_LOGO_URL,
    }
    if spec.get("nftMetadataTemplate") == "player":
        metadata["animation_url"] = _player_url(PLAYER_IMMUTABLE_URL, video_cid, loop=True)
        metadata["external_url"] = _player_url(PLAYER_EXTERNAL_URL, video_cid, loop=False)
        metadata["properties"] = {
            "video": video_url,
            "com.livepeer.playbackId": asset["playbackId"],
        }
    else:
        metadata["animation_url"] = video_url
    overrides = spec.get("nftMetadata")
    if isinstance(overrides, dict):
        _merge(metadata, overrides)
    text = json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode("utf-8")


def _player_url(base: str, video_cid: str, *, loop: bool) -> str:
    query = {"loop": "1", "v": video_cid} if loop else {"v": video_cid}
    return f"{base}?{urlencode(query)}"


def _merge(target: Doc, overrides: Doc) -> None:
    """task-runner's mergeJson: null deletes a key, objects merge, anything else replaces."""
    for key, value in overrides.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _new_export_task(asset: Doc, spec: Doc, now: int) -> Doc:
    """Studio's createTask for `export`: the asset is its input, not its output."""
    return {
        "id": new_id(),
        "createdAt": now,
        "type": "export",
        "inputAssetId": asset["id"],
        "userId": asset["userId"],
        "projectId": asset["projectId"],
        "params": {"export": {"ipfs": spec}},
        "status": {"phase": TaskPhase.PENDING.value, "updatedAt": now},
    }


def _touched(asset: Doc, storage: Doc, at: int) -> Doc:
    """Studio's updateAsset without a status: the phase stays, updatedAt moves."""
    asset["storage"] = storage
    asset["status"] = {**asset["status"], "updatedAt": max(at, asset["status"]["updatedAt"])}
    return asset


def _embeddable_player(origin: str) -> bool:
    """Studio's /^https:\\/\\/(.+\\.)?lvpr.tv$/ on the request's Origin."""
    if not origin.startswith("https://"):
        return False
    host = origin[len("https://") :]
    return host == EMBEDDABLE_PLAYER_SUFFIX or (
        host.endswith("." + EMBEDDABLE_PLAYER_SUFFIX) and len(host) > len("lvpr.tv") + 1
    )
