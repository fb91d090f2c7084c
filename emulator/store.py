"""Persistence: the only module that runs SQL.

Assets and tasks are stored as their Studio documents (JSON), with the columns that lists
filter and sort on kept beside them. Planned processing steps are rows too, so a restart
resumes exactly where the server stopped. Schema changes go through PRAGMA user_version.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3  # noqa: TID251  (only for the read-only check in Store.open)
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from emulator.errors import ConfigError
from emulator.models import Doc, Step, StepKind

_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE assets (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        playback_id TEXT NOT NULL UNIQUE,
        phase TEXT NOT NULL,
        name TEXT NOT NULL,
        source_type TEXT,
        source_url TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        media_path TEXT,
        doc TEXT NOT NULL
    );
    CREATE INDEX assets_by_tenant ON assets (tenant, deleted, updated_at DESC, created_at DESC);
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        asset_id TEXT,
        type TEXT NOT NULL,
        phase TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX tasks_by_tenant ON tasks (tenant, updated_at DESC, created_at DESC);
    CREATE INDEX tasks_by_asset ON tasks (asset_id);
    CREATE TABLE steps (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        due_ms INTEGER NOT NULL,
        asset_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX steps_by_due ON steps (due_ms, seq);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # tus resumable uploads (emulator/tus.py): one row per upload, kept so a restart
    # leaves every unfinished upload resumable at the offset it had reached.
    """
    CREATE TABLE tus_uploads (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        token TEXT NOT NULL,
        length INTEGER,
        upload_offset INTEGER NOT NULL,
        metadata TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        completed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX tus_uploads_by_tenant ON tus_uploads (tenant, expires_at);
    """,
    # Webhooks (emulator/webhooks.py, emulator/delivery.py): the subscriptions, deliveries
    # still to attempt (due_ms NULL while a fault holds one back), and the attempt log.
    """
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        origin TEXT NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX webhooks_by_tenant ON webhooks (tenant, deleted, created_at DESC);
    CREATE TABLE webhook_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        due_ms INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        fault TEXT,
        payload TEXT NOT NULL
    );
    CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, due_ms, seq);
    CREATE TABLE webhook_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        tenant TEXT NOT NULL,
        webhook_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event TEXT NOT NULL,
        asset_id TEXT,
        created_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX webhook_log_by_webhook ON webhook_log (webhook_id, created_at DESC);
    CREATE INDEX webhook_log_by_tenant ON webhook_log (tenant, seq);
    """,
)

# List fields a caller may filter or sort on, and the SQL expression behind each.
ASSET_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "name",
    "playbackId": "playback_id",
    "phase": "phase",
    "sourceUrl": "source_url",
    "sourceType": "source_type",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "creatorId": "json_extract(doc, '$.creatorId.value')",
    "userId": "json_extract(doc, '$.userId')",
    "projectId": "json_extract(doc, '$.projectId')",
}
TASK_FIELDS: dict[str, str] = {
    "id": "id",
    "type": "type",
    "phase": "phase",
    "createdAt": "created_at",
    "updatedAt": "updated_at",
    "outputAssetId": "json_extract(doc, '$.outputAssetId')",
    "inputAssetId": "json_extract(doc, '$.inputAssetId')",
    "userId": "json_extract(doc, '$.userId')",
    "projectId": "json_extract(doc, '$.projectId')",
}
_OPERATORS = {
    "eq": "= ?",
    "gt": "> ?",
    "gte": ">= ?",
    "lt": "< ?",
    "lte": "<= ?",
    "like": "LIKE ? ESCAPE '\\'",  # case-insensitive substring, as Studio's name filter
}


@dataclass(frozen=True)
class Filter:
    field: str  # a key of ASSET_FIELDS / TASK_FIELDS
    op: str  # a key of _OPERATORS
    value: Any


@dataclass(frozen=True)
class ListQuery:
    limit: int = 20
    offset: int = 0
    filters: Sequence[Filter] = ()
    order: Sequence[tuple[str, bool]] = (("updatedAt", True), ("createdAt", True))
    count: bool = False


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


def _read_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        db.close()


def _unusable(path: Path, exc: sqlite3.Error) -> ConfigError:
    return ConfigError(
        f"{path} is not a usable SQLite database ({exc}): move it away, or choose another "
        "--data-dir (env LIVEPEER_EMULATOR_DATA_DIR)"
    )


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, path: Path) -> Store:
        """Raises ConfigError if the file there is not a database this can use."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Only reads: a file that is not a database fails here, before anything writes
            # to it, and without aiosqlite, whose worker thread outlives a failed connect.
            await asyncio.to_thread(_read_schema, path)
            db = await aiosqlite.connect(path)
        except sqlite3.Error as exc:
            raise _unusable(path, exc) from exc
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            store = cls(db)
            await store._migrate()
        except sqlite3.Error as exc:
            # Close it, or its worker thread keeps the process alive after the error.
            await db.close()
            raise _unusable(path, exc) from exc
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(script)
            await self._db.execute(f"PRAGMA user_version = {number}")
        await self._db.commit()

    # -- meta ---------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def set_meta(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        await self._db.commit()

    # -- writes -------------------------------------------------------------------------

    async def save(self, changes: Changes) -> None:
        db = self._db
        try:
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
                await db.execute(
                    "DELETE FROM steps WHERE asset_id = ?", (changes.delete_steps_of_asset,)
                )
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
            await db.commit()
        except BaseException:
            await db.rollback()
            raise

    async def reset(self, tenant: str | None) -> list[str]:
        """Delete a tenant's objects (None: everyone's); returns the media paths freed."""
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        async with self._db.execute(f"SELECT media_path FROM assets {where}", args) as cur:
            paths = [str(r[0]) for r in await cur.fetchall() if r[0]]
        for table in ("assets", "tasks", "steps"):
            await self._db.execute(f"DELETE FROM {table} {where}", args)
        await self._db.commit()
        return paths

    # -- reads --------------------------------------------------------------------------

    async def get_asset(self, asset_id: str) -> AssetRow | None:
        return await self._one_asset("id = ?", (asset_id,))

    async def get_asset_by_playback_id(self, playback_id: str) -> AssetRow | None:
        return await self._one_asset("playback_id = ?", (playback_id,))

    async def find_recent_import(self, tenant: str, url: str, since_ms: int) -> AssetRow | None:
        return await self._one_asset(
            "tenant = ? AND source_url = ? AND deleted = 0 AND created_at >= ? "
            "AND phase IN ('waiting', 'processing') ORDER BY created_at DESC",
            (tenant, url, since_ms),
        )

    async def _one_asset(self, where: str, args: tuple[Any, ...]) -> AssetRow | None:
        sql = f"SELECT tenant, media_path, doc FROM assets WHERE {where} LIMIT 1"
        async with self._db.execute(sql, args) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return AssetRow(tenant=row[0], media_path=row[1], doc=json.loads(row[2]))

    async def imports_in_flight(self) -> list[AssetRow]:
        """URL imports still waiting with nothing planned: their download must (re)start."""
        return await self._waiting_unplanned("source_type = 'url' AND media_path IS NULL")

    async def arrivals_in_flight(self) -> list[AssetRow]:
        """Assets whose media is on disk with nothing planned: stopped while the media was
        being hashed and probed, which must run again."""
        return await self._waiting_unplanned("media_path IS NOT NULL")

    async def _waiting_unplanned(self, condition: str) -> list[AssetRow]:
        sql = (
            "SELECT tenant, media_path, doc FROM assets WHERE phase = 'waiting' "
            f"AND deleted = 0 AND {condition} AND id NOT IN (SELECT asset_id FROM steps)"
        )
        async with self._db.execute(sql) as cur:
            rows = await cur.fetchall()
        return [AssetRow(tenant=r[0], media_path=r[1], doc=json.loads(r[2])) for r in rows]

    async def list_assets(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._list("assets", ASSET_FIELDS, "deleted = 0 AND ", tenant, query)

    async def get_task(self, task_id: str) -> TaskRow | None:
        sql = "SELECT tenant, doc FROM tasks WHERE id = ?"
        async with self._db.execute(sql, (task_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else TaskRow(tenant=row[0], doc=json.loads(row[1]))

    async def tasks_of_asset(self, asset_id: str) -> list[TaskRow]:
        sql = "SELECT tenant, doc FROM tasks WHERE asset_id = ? ORDER BY created_at"
        async with self._db.execute(sql, (asset_id,)) as cur:
            rows = await cur.fetchall()
        return [TaskRow(tenant=r[0], doc=json.loads(r[1])) for r in rows]

    async def list_tasks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._list("tasks", TASK_FIELDS, "", tenant, query)

    async def _list(
        self, table: str, fields: dict[str, str], base: str, tenant: str, query: ListQuery
    ) -> tuple[list[Doc], int | None]:
        where = [f"{base}tenant = ?"]
        args: list[Any] = [tenant]
        for f in query.filters:
            where.append(f"{fields[f.field]} {_OPERATORS[f.op]}")
            args.append(f.value)
        clause = " AND ".join(where)
        # rowid last: ties (same-millisecond writes) still page deterministically, newest first.
        order = ", ".join(
            [f"{fields[name]} {'DESC' if desc else 'ASC'}" for name, desc in query.order]
            + ["rowid DESC"]
        )
        sql = f"SELECT doc FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?"
        async with self._db.execute(sql, (*args, query.limit, query.offset)) as cur:
            docs = [json.loads(r[0]) for r in await cur.fetchall()]
        total = None
        if query.count:
            async with self._db.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", args) as c:
                row = await c.fetchone()
            total = int(row[0]) if row else 0
        return docs, total

    # -- steps --------------------------------------------------------------------------

    async def steps(self, tenant: str | None = None) -> list[Step]:
        """Planned steps in due order (all tenants, or one)."""
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        sql = (
            "SELECT seq, tenant, due_ms, asset_id, task_id, kind, data FROM steps "
            f"{where} ORDER BY due_ms, seq"
        )
        async with self._db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [
            Step(
                seq=r[0],
                tenant=r[1],
                due_ms=r[2],
                asset_id=r[3],
                task_id=r[4],
                kind=StepKind(r[5]),
                data=json.loads(r[6]),
            )
            for r in rows
        ]

    # -- tus uploads --------------------------------------------------------------------

    async def put_tus_upload(self, row: TusRow) -> None:
        """Create or replace an upload (a new creation POST for the same asset restarts it)."""
        await self._db.execute(
            "INSERT OR REPLACE INTO tus_uploads (id, tenant, asset_id, token, length, "
            "upload_offset, metadata, created_at, expires_at, completed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.tenant,
                row.asset_id,
                row.token,
                row.length,
                row.offset,
                row.metadata,
                row.created_at,
                row.expires_at,
                1 if row.completed else 0,
            ),
        )
        await self._db.commit()

    async def update_tus_upload(self, row: TusRow) -> None:
        """Record what changed while bytes arrived: offset, a deferred length, completion."""
        await self._db.execute(
            "UPDATE tus_uploads SET length = ?, upload_offset = ?, completed = ? WHERE id = ?",
            (row.length, row.offset, 1 if row.completed else 0, row.id),
        )
        await self._db.commit()

    async def get_tus_upload(self, upload_id: str) -> TusRow | None:
        rows = await self._tus_rows("WHERE id = ?", (upload_id,))
        return rows[0] if rows else None

    async def tus_uploads(self, tenant: str | None = None) -> list[TusRow]:
        """Every upload (or one tenant's), oldest expiry first."""
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        return await self._tus_rows(where, args)

    async def delete_tus_upload(self, upload_id: str) -> None:
        await self._db.execute("DELETE FROM tus_uploads WHERE id = ?", (upload_id,))
        await self._db.commit()

    async def _tus_rows(self, where: str, args: tuple[Any, ...]) -> list[TusRow]:
        sql = (
            "SELECT id, tenant, asset_id, token, length, upload_offset, metadata, created_at, "
            f"expires_at, completed FROM tus_uploads {where} ORDER BY expires_at, id"
        )
        async with self._db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [
            TusRow(
                id=r[0],
                tenant=r[1],
                asset_id=r[2],
                token=r[3],
                length=r[4],
                offset=r[5],
                metadata=r[6],
                created_at=r[7],
                expires_at=r[8],
                completed=bool(r[9]),
            )
            for r in rows
        ]

    # -- webhooks -----------------------------------------------------------------------

    async def put_webhook(self, row: WebhookRow) -> None:
        d = row.doc
        await self._db.execute(
            "INSERT INTO webhooks (id, tenant, created_at, deleted, origin, doc) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "deleted = excluded.deleted, doc = excluded.doc",
            (d["id"], row.tenant, d["createdAt"], int(row.deleted), row.origin, json.dumps(d)),
        )
        await self._db.commit()

    async def get_webhook(self, webhook_id: str) -> WebhookRow | None:
        rows = await self._webhook_rows("id = ?", (webhook_id,))
        return rows[0] if rows else None

    async def live_webhooks(self, tenant: str) -> list[WebhookRow]:
        return await self._webhook_rows("tenant = ? AND deleted = 0", (tenant,))

    async def list_webhooks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._list("webhooks", WEBHOOK_FIELDS, "deleted = 0 AND ", tenant, query)

    async def _webhook_rows(self, where: str, args: tuple[Any, ...]) -> list[WebhookRow]:
        sql = f"SELECT tenant, deleted, origin, doc FROM webhooks WHERE {where} ORDER BY rowid"
        async with self._db.execute(sql, args) as cur:
            rows = await cur.fetchall()
        return [WebhookRow(r[0], json.loads(r[3]), r[2], bool(r[1])) for r in rows]

    async def note_webhook_status(self, webhook_id: str, status: Doc) -> None:
        """Merge into the webhook's `status` in one statement, so a PATCH is not undone."""
        await self._db.execute(
            "UPDATE webhooks SET doc = json_set(doc, '$.status', "
            "json_patch(coalesce(json_extract(doc, '$.status'), '{}'), ?)) WHERE id = ?",
            (json.dumps(status), webhook_id),
        )
        await self._db.commit()

    async def add_deliveries(self, rows: Sequence[DeliveryRow]) -> None:
        await self._db.executemany(
            "INSERT INTO webhook_deliveries (tenant, webhook_id, event_id, event, created_at, "
            "due_ms, attempts, fault, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.tenant,
                    r.webhook_id,
                    r.event_id,
                    r.event,
                    r.created_at,
                    r.due_ms,
                    r.attempts,
                    r.fault,
                    json.dumps(r.payload),
                )
                for r in rows
            ],
        )
        await self._db.commit()

    async def delivery_due_times(self, tenant: str | None) -> list[tuple[str, str, int]]:
        """(tenant, webhook id, earliest due ms) of every webhook with a delivery pending."""
        where, args = ("AND tenant = ?", (tenant,)) if tenant is not None else ("", ())
        sql = (
            "SELECT tenant, webhook_id, MIN(due_ms) FROM webhook_deliveries "
            f"WHERE due_ms IS NOT NULL {where} GROUP BY tenant, webhook_id"
        )
        async with self._db.execute(sql, args) as cur:
            return [(r[0], r[1], int(r[2])) for r in await cur.fetchall()]

    async def next_delivery(self, webhook_id: str) -> DeliveryRow | None:
        """The webhook's delivery to attempt next: earliest due, then oldest."""
        sql = (
            "SELECT seq, tenant, webhook_id, event_id, event, created_at, due_ms, attempts, "
            "fault, payload FROM webhook_deliveries WHERE webhook_id = ? AND due_ms IS NOT NULL "
            "ORDER BY due_ms, seq LIMIT 1"
        )
        async with self._db.execute(sql, (webhook_id,)) as cur:
            r = await cur.fetchone()
        if r is None:
            return None
        return DeliveryRow(
            seq=r[0],
            tenant=r[1],
            webhook_id=r[2],
            event_id=r[3],
            event=r[4],
            created_at=r[5],
            due_ms=r[6],
            attempts=r[7],
            fault=r[8],
            payload=json.loads(r[9]),
        )

    async def finish_attempt(
        self, seq: int, *, retry_at: int | None, attempts: int, release_at: int | None
    ) -> None:
        """After an attempt: reschedule it (retry_at) or drop it, and let deliveries held
        back behind it (a reorder fault) go at release_at."""
        if release_at is not None:
            await self._db.execute(
                "UPDATE webhook_deliveries SET due_ms = ? WHERE due_ms IS NULL AND seq < ? "
                "AND webhook_id = (SELECT webhook_id FROM webhook_deliveries WHERE seq = ?)",
                (release_at, seq, seq),
            )
        if retry_at is None:
            await self._db.execute("DELETE FROM webhook_deliveries WHERE seq = ?", (seq,))
        else:
            await self._db.execute(
                "UPDATE webhook_deliveries SET due_ms = ?, attempts = ? WHERE seq = ?",
                (retry_at, attempts, seq),
            )
        await self._db.commit()

    async def drop_deliveries(self, webhook_id: str) -> None:
        await self._db.execute("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))
        await self._db.commit()

    async def add_webhook_log(self, row: LogRow, keep: int) -> None:
        """Record one attempt; only the newest `keep` attempts are kept."""
        await self._db.execute(
            "INSERT INTO webhook_log (id, tenant, webhook_id, event_id, event, asset_id, "
            "created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.doc["id"],
                row.tenant,
                row.doc["webhookId"],
                row.event_id,
                row.doc["event"],
                row.asset_id,
                row.doc["createdAt"],
                json.dumps(row.doc),
            ),
        )
        await self._db.execute(
            "DELETE FROM webhook_log WHERE seq <= (SELECT MAX(seq) FROM webhook_log) - ?", (keep,)
        )
        await self._db.commit()

    async def webhook_log(
        self,
        tenant: str | None,
        *,
        log_id: str | None = None,
        event_id: str | None = None,
        webhook_id: str | None = None,
        event: str | None = None,
        asset_id: str | None = None,
        newest_first: bool = False,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LogRow]:
        where, args = ["1 = 1"], []
        for column, value in (
            ("tenant", tenant),
            ("id", log_id),
            ("event_id", event_id),
            ("webhook_id", webhook_id),
            ("event", event),
            ("asset_id", asset_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        order = "created_at DESC, seq DESC" if newest_first else "seq"
        sql = (
            f"SELECT tenant, event_id, asset_id, doc FROM webhook_log WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT ? OFFSET ?"
        )
        async with self._db.execute(sql, (*args, limit, offset)) as cur:
            rows = await cur.fetchall()
        return [LogRow(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def reset_webhooks(self, tenant: str | None) -> None:
        where, args = ("WHERE tenant = ?", (tenant,)) if tenant is not None else ("", ())
        for table in ("webhooks", "webhook_deliveries", "webhook_log"):
            await self._db.execute(f"DELETE FROM {table} {where}", args)
        await self._db.commit()


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
        _text(d["name"]),
        source.get("type"),
        _text(source.get("url")),
        d["createdAt"],
        d["status"]["updatedAt"],
        1 if d.get("deleted") else 0,
        a.media_path,
        json.dumps(d),
    )


@dataclass
class TusRow:
    """One tus upload: how far it got, and the asset (via its upload token) it feeds."""

    id: str  # "directUpload/<playbackId>", as Studio names it
    tenant: str
    asset_id: str
    token: str
    length: int | None  # None while the client defers it
    offset: int
    metadata: str | None  # the raw Upload-Metadata header, echoed back on HEAD
    created_at: int
    expires_at: int
    completed: bool = False


# Webhooks have no updatedAt: lists fall back to creation time, as they order by it.
WEBHOOK_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "json_extract(doc, '$.name')",
    "url": "json_extract(doc, '$.url')",
    "createdAt": "created_at",
    "updatedAt": "created_at",
}


@dataclass
class WebhookRow:
    tenant: str
    doc: Doc
    origin: str  # where its creator reached us: the base of URLs in event snapshots
    deleted: bool = False


@dataclass
class DeliveryRow:
    """One event on its way to one webhook; kept until it succeeds or is given up."""

    tenant: str
    webhook_id: str
    event_id: str
    event: str
    created_at: int
    due_ms: int | None  # None: held back until a later delivery has gone
    payload: Doc
    attempts: int = 0
    fault: str | None = None  # "bad_signature" when a scenario rule asked for one
    seq: int | None = None


@dataclass
class LogRow:
    """One delivery attempt: Studio's webhook-log document plus what it was about."""

    tenant: str
    event_id: str
    asset_id: str | None
    doc: Doc
