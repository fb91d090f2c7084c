"""Assets, their tasks, their planned processing steps, and the meta key/value table.

Assets and tasks are stored as their Studio documents (JSON), with the columns that lists
filter and sort on kept beside them. Planned processing steps are rows too, so a restart
resumes exactly where the server stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from emulator.models import Doc, Event, Step, StepKind
from emulator.store.base import ListQuery, Stored, Tables, from_row, rows_of, tenant_scope

# A plan that holds one of these runs to its end; one that lacks them was cut short.
TERMINAL_STEPS = (StepKind.READY, StepKind.FAIL)

# List fields a caller may filter or sort on, and the SQL expression behind each: the
# fieldsMap of Studio's asset.ts and task.ts (less `user.email`, which its non-admin
# lists cannot query: wire.py answers as Studio does).
ASSET_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "name",
    "objectStoreId": "json_extract(doc, '$.objectStoreId')",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "userId": "json_extract(doc, '$.userId')",
    "creatorId": "json_extract(doc, '$.creatorId.value')",
    "playbackId": "playback_id",
    "playbackRecordingId": "json_extract(doc, '$.playbackRecordingId')",
    "projectId": "json_extract(doc, '$.projectId')",
    "phase": "phase",
    "cid": "json_extract(doc, '$.storage.ipfs.cid')",
    "nftMetadataCid": "json_extract(doc, '$.storage.ipfs.nftMetadata.cid')",
    "sourceUrl": "source_url",
    "sourceSessionId": "json_extract(doc, '$.source.sessionId')",
    "sourceAssetId": "json_extract(doc, '$.source.assetId')",
    "sourceType": "source_type",
    "sourcePlaybackId": "json_extract(doc, '$.source.playbackId')",
}
TASK_FIELDS: dict[str, str] = {  # no phase: Studio's task lists neither filter nor sort on it
    "id": "id",
    "name": "json_extract(doc, '$.name')",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "userId": "json_extract(doc, '$.userId')",
    "type": "type",
    "inputAssetId": "json_extract(doc, '$.inputAssetId')",
    "outputAssetId": "json_extract(doc, '$.outputAssetId')",
    "projectId": "json_extract(doc, '$.projectId')",
}


@dataclass
class AssetRow:
    tenant: str
    doc: Doc
    media_path: str | None = None


@dataclass
class TaskRow:
    tenant: str
    doc: Doc


@dataclass
class Changes:
    """Everything one transition writes, applied in a single transaction."""

    assets: list[AssetRow] = field(default_factory=list)
    tasks: list[TaskRow] = field(default_factory=list)
    add_steps: list[Step] = field(default_factory=list)
    delete_steps: list[int] = field(default_factory=list)
    delete_steps_of_asset: str | None = None
    # Webhook events the transition raises, stored beside it (the outbox), so a stop at
    # any moment can lose neither the change nor its events.
    events: list[Event] = field(default_factory=list)

    @property
    def asset_ids(self) -> list[str]:
        return [a.doc["id"] for a in self.assets]


class AssetTables(Tables):
    # -- meta ---------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._row("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- writes -------------------------------------------------------------------------

    async def save(self, changes: Changes) -> None:
        """Write one transition whole: documents, plan changes and the events it raises."""
        await self._transact(lambda db: _write_changes(db, changes), assets=changes.asset_ids)

    async def reset(self, tenant: str | None) -> list[str]:
        """Delete a tenant's objects (None: everyone's); returns the media paths freed."""
        where, args = tenant_scope(tenant)

        async def work(db: aiosqlite.Connection) -> list[str]:
            rows = await rows_of(db, f"SELECT media_path FROM assets {where}", args)
            for table in ("assets", "tasks", "steps", "export_steps", "ipfs_files"):
                await db.execute(f"DELETE FROM {table} {where}", args)
            return [str(r[0]) for r in rows if r[0]]

        # Every asset of the tenant (or of everyone) is gone: the watchers forget them all.
        return await self._transact(work, assets=None)

    # -- reads --------------------------------------------------------------------------

    async def get_asset(self, asset_id: str) -> AssetRow | None:
        return await self._one_asset("id = ?", (asset_id,))

    async def get_asset_by_playback_id(self, playback_id: str) -> AssetRow | None:
        return await self._one_asset("playback_id = ?", (playback_id,))

    async def find_recent_import(self, tenant: str, url: str, since_ms: int) -> AssetRow | None:
        return await self._one_asset(
            "tenant = ? AND source_url = ? AND deleted = 0 AND created_at >= ? "
            "AND phase IN ('waiting', 'processing') ORDER BY created_at DESC",
            (tenant, _text(url), since_ms),  # as stored: SQLite text cannot hold surrogates
        )

    async def _one_asset(self, where: str, args: tuple[Any, ...]) -> AssetRow | None:
        sql = f"SELECT tenant, media_path, doc FROM assets WHERE {where} LIMIT 1"
        row = await self._row(sql, args)
        if row is None:
            return None
        return AssetRow(tenant=row[0], media_path=row[1], doc=json.loads(row[2]))

    async def imports_in_flight(self) -> list[AssetRow]:
        """URL imports still waiting with nothing planned: their download must (re)start."""
        return await self._waiting_unplanned("source_type = 'url' AND media_path IS NULL")

    async def arrivals_in_flight(self) -> list[AssetRow]:
        """Assets whose media is on disk with no complete plan: stopped while the media was
        being hashed and probed, which must run again. A plan is complete when it ends in
        a terminal step; an older version could commit only part of one (issue 11), which
        left its asset `processing` forever, so `processing` assets are looked at too."""
        return await self._unplanned(("waiting", "processing"), "media_path IS NOT NULL")

    async def readiness_in_flight(self) -> list[AssetRow]:
        """Assets with media whose plan still ends `ready`: a stop may have cut short the
        making of their outputs."""
        sql = (
            "SELECT tenant, media_path, doc FROM assets WHERE phase IN ('waiting', "
            "'processing') AND deleted = 0 AND media_path IS NOT NULL AND id IN "
            "(SELECT asset_id FROM steps WHERE kind = ?)"
        )
        rows = await self._rows(sql, (StepKind.READY.value,))
        return [AssetRow(tenant=r[0], media_path=r[1], doc=json.loads(r[2])) for r in rows]

    async def _waiting_unplanned(self, condition: str) -> list[AssetRow]:
        return await self._unplanned(("waiting",), condition)

    async def _unplanned(self, phases: tuple[str, ...], condition: str) -> list[AssetRow]:
        terminal = ", ".join(f"'{k.value}'" for k in TERMINAL_STEPS)
        sql = (
            f"SELECT tenant, media_path, doc FROM assets WHERE phase IN "
            f"({', '.join('?' for _ in phases)}) AND deleted = 0 AND {condition} "
            f"AND id NOT IN (SELECT asset_id FROM steps WHERE kind IN ({terminal}))"
        )
        rows = await self._rows(sql, phases)
        return [AssetRow(tenant=r[0], media_path=r[1], doc=json.loads(r[2])) for r in rows]

    async def list_assets(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._list("assets", ASSET_FIELDS, "deleted = 0 AND ", tenant, query)

    async def list_stored_assets(
        self, tenant: str, query: ListQuery
    ) -> tuple[list[Stored], int | None]:
        """list_assets' page undecoded: the caller decodes only what its cache lacks."""
        return await self._list_stored("assets", ASSET_FIELDS, "deleted = 0 AND ", tenant, query)

    async def get_task(self, task_id: str) -> TaskRow | None:
        row = await self._row("SELECT tenant, doc FROM tasks WHERE id = ?", (task_id,))
        return None if row is None else TaskRow(tenant=row[0], doc=json.loads(row[1]))

    async def tasks_of_asset(self, asset_id: str) -> list[TaskRow]:
        sql = "SELECT tenant, doc FROM tasks WHERE asset_id = ? ORDER BY created_at"
        rows = await self._rows(sql, (asset_id,))
        return [TaskRow(tenant=r[0], doc=json.loads(r[1])) for r in rows]

    async def list_tasks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._list("tasks", TASK_FIELDS, "", tenant, query)

    # -- steps --------------------------------------------------------------------------

    async def steps(self, tenant: str | None = None) -> list[Step]:
        """Planned steps in due order (all tenants, or one)."""
        where, args = tenant_scope(tenant)
        sql = (
            "SELECT seq, tenant, due_ms, asset_id, task_id, kind, data FROM steps "
            f"{where} ORDER BY due_ms, seq"
        )
        rows = await self._rows(sql, args)
        return [from_row(Step, r, kind=StepKind, data=json.loads) for r in rows]


def _text(value: str | None) -> str | None:
    """A column-safe copy: JSON allows lone surrogates, SQLite's UTF-8 text does not.
    (The document itself keeps the original, escaped by json.dumps.)"""
    if value is None:
        return None
    return value.encode("utf-8", "replace").decode("utf-8")


def _asset_values(a: AssetRow) -> tuple[Any, ...]:
    d = a.doc
    source = d.get("source") or {}
    return (
        d["id"],
        a.tenant,
        d["playbackId"],
        d["status"]["phase"],
        _text(d.get("name", "")),  # none for a top-level array body, as in Studio
        source.get("type"),
        _text(source.get("url")),
        d["createdAt"],
        d["status"]["updatedAt"],
        # Studio's `data->>'deleted' IS NULL`: a restored asset's `deleted: false` counts.
        0 if d.get("deleted") is None else 1,
        a.media_path,
        json.dumps(d),
    )


async def _write_changes(db: aiosqlite.Connection, changes: Changes) -> None:
    for a in changes.assets:
        await db.execute(
            "INSERT INTO assets (id, tenant, playback_id, phase, name, source_type, "
            "source_url, created_at, updated_at, deleted, media_path, doc) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, "
            "name = excluded.name, updated_at = excluded.updated_at, "
            "deleted = excluded.deleted, media_path = excluded.media_path, "
            "doc = excluded.doc",
            _asset_values(a),
        )
    for t in changes.tasks:
        d = t.doc
        await db.execute(
            "INSERT INTO tasks (id, tenant, asset_id, type, phase, created_at, "
            "updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET phase = excluded.phase, "
            "updated_at = excluded.updated_at, doc = excluded.doc",
            (
                d["id"],
                t.tenant,
                d.get("outputAssetId") or d.get("inputAssetId"),
                d["type"],
                d["status"]["phase"],
                d["createdAt"],
                d["status"]["updatedAt"],
                json.dumps(d),
            ),
        )
    if changes.delete_steps_of_asset is not None:
        await db.execute("DELETE FROM steps WHERE asset_id = ?", (changes.delete_steps_of_asset,))
    await db.executemany(
        "DELETE FROM steps WHERE seq = ?", [(seq,) for seq in changes.delete_steps]
    )
    await db.executemany(
        "INSERT INTO steps (tenant, due_ms, asset_id, task_id, kind, data) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (s.tenant, s.due_ms, s.asset_id, s.task_id, s.kind.value, json.dumps(s.data))
            for s in changes.add_steps
        ],
    )
    await db.executemany(
        "INSERT INTO outbox (id, tenant, name, created_at, subject) VALUES (?, ?, ?, ?, ?)",
        [(e.id, e.tenant, e.name, e.created_at, json.dumps(e.subject)) for e in changes.events],
    )
