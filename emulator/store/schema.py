"""The database file: its schema, its migrations, and opening it.

Schema changes go through PRAGMA user_version: migration N (counting from 1) runs once,
on a database whose user_version is below N, so an existing file only ever moves forward.
Append new migrations; never edit or reorder one that has shipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import aiosqlite

from emulator.errors import ConfigError

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
    # The webhook outbox: events stored in the same transaction as the change that
    # raised them, until emulator/delivery.py has turned them into deliveries.
    """
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        subject TEXT NOT NULL
    );
    """,
    # IPFS exports (emulator/exports.py): export tasks' planned steps, kept apart from
    # processing's, and the files each export pinned, which the local gateway serves.
    """
    CREATE TABLE export_steps (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant TEXT NOT NULL,
        due_ms INTEGER NOT NULL,
        asset_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX export_steps_by_due ON export_steps (due_ms, seq);
    CREATE TABLE ipfs_files (
        cid TEXT NOT NULL,
        tenant TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        content BLOB,
        PRIMARY KEY (cid, asset_id)
    );
    """,
    # Access control's signing keys (emulator/signing_keys.py): the public keys that
    # playback JWTs name, looked up by that key on every gated media request.
    """
    CREATE TABLE signing_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        public_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0,
        doc TEXT NOT NULL
    );
    CREATE INDEX signing_keys_by_tenant ON signing_keys (tenant, deleted, created_at DESC);
    CREATE INDEX signing_keys_by_public_key ON signing_keys (public_key);
    """,
    # API keys made through the control plane (emulator/api_keys.py), CORS-enabled or
    # not: loaded into memory at start, since every authenticated request looks one up.
    """
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX api_keys_by_tenant ON api_keys (tenant);
    """,
)


async def connect(path: Path) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
    """Open (creating if need be) and migrate the database at path: (writer, reader).

    Raises ConfigError if the file there is not a database this can use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Checked and migrated in one trip to a worker thread, with plain sqlite3: a file
        # that is not a database fails here, without aiosqlite (whose worker thread
        # outlives a failed connect), and the start pays one thread hop, not one per
        # statement of every migration (issue 16: start time).
        if path in _prepared_ahead:
            _prepared_ahead.discard(path)  # by start_preparing, for this connect only
        else:
            await asyncio.to_thread(_prepare, path)
        db = await aiosqlite.connect(path)
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from exc
    try:
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA synchronous=NORMAL")  # per connection, unlike WAL
    except sqlite3.Error as exc:
        # Close it, or its worker thread keeps the process alive after the error.
        await db.close()
        raise _unusable(path, exc) from exc
    try:
        reader = await aiosqlite.connect(path)
        reader.row_factory = aiosqlite.Row
    except sqlite3.Error as exc:
        await db.close()
        raise _unusable(path, exc) from exc
    return db, reader


# Files start_preparing has made ready, which the next connect() need not check again.
_prepared_ahead: set[Path] = set()


def start_preparing(path: Path) -> threading.Thread:
    """Run connect()'s preparation of the file (create, WAL, migrations) in a thread of
    its own, for a caller with other work to do meanwhile: the CLI loads the server's
    code while SQLite writes (its I/O releases the GIL), and connect() then finds the
    file ready (issue 16: start time). A failure is left for connect() to report."""

    def prepare() -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            _prepare(path)
            _prepared_ahead.add(path)

    thread = threading.Thread(target=prepare, name="prepare-database", daemon=True)
    thread.start()
    return thread


def _prepare(path: Path) -> None:
    """Read the file (only reads until it is known to be a database), switch it to WAL
    and run the migrations it lacks."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        row = db.execute("PRAGMA user_version").fetchone()
        version = int(row[0]) if row else 0
        if version < len(_MIGRATIONS):
            # Every missing migration in one transaction: all of them or, if one fails,
            # none (closing without COMMIT rolls back), and one commit to wait for.
            steps = [
                f"{script}\nPRAGMA user_version = {number};"
                for number, script in enumerate(_MIGRATIONS[version:], start=version + 1)
            ]
            db.executescript("BEGIN;\n" + "\n".join(steps) + "\nCOMMIT;")
    finally:
        db.close()


def _unusable(path: Path, exc: sqlite3.Error) -> ConfigError:
    return ConfigError(
        f"{path} is not a usable SQLite database ({exc}): move it away, or choose another "
        "--data-dir (env LIVEPEER_EMULATOR_DATA_DIR)"
    )
