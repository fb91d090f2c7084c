"""Opening the database: migrations run once, whole or not at all, and a file that is not
a database is refused by name without being written to."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from emulator.errors import ConfigError
from emulator.store import schema


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()  # `with` only commits: an open connection warns on Python 3.13


async def test_an_older_database_gets_only_the_migrations_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(schema._MIGRATIONS[:2], start=1):
            db.executescript(script)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
    db.close()
    writer, reader = await schema.connect(path)
    try:
        assert _version(path) == len(schema._MIGRATIONS)
        rows = await reader.execute_fetchall("SELECT value FROM meta WHERE key = 'kept'")
        assert [tuple(r) for r in rows] == [("yes",)]
        mode = await writer.execute_fetchall("PRAGMA journal_mode")
        assert [tuple(r) for r in mode] == [("wal",)]
    finally:
        await writer.close()
        await reader.close()


async def test_a_failing_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(schema._MIGRATIONS[0])
        db.execute("PRAGMA user_version = 1")
        before = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    broken = (*schema._MIGRATIONS, "CREATE TABLE late (x);\nTHIS IS NOT SQL;")
    monkeypatch.setattr(schema, "_MIGRATIONS", broken)
    with pytest.raises(ConfigError, match="is not a usable SQLite database"):
        await schema.connect(path)
    assert _version(path) == 1  # none of migrations 2.. either: one transaction
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert tables == before  # nothing of migrations 2.. and not the late table


async def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    path.write_bytes(b"not a database, just text " * 100)
    with pytest.raises(ConfigError) as refused:
        await schema.connect(path)
    assert str(path) in str(refused.value) and "--data-dir" in str(refused.value)
    assert path.read_bytes() == b"not a database, just text " * 100


async def test_preparing_ahead_leaves_connect_little_to_do_and_failures_to_it(
    tmp_path: Path,
) -> None:
    """The CLI prepares the file in a thread while the server's code loads."""
    path = tmp_path / "data" / "emulator.sqlite3"
    schema.start_preparing(path).join(timeout=30)
    assert _version(path) == len(schema._MIGRATIONS)
    writer, reader = await schema.connect(path)
    await writer.close()
    await reader.close()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database " * 100)
    thread = schema.start_preparing(junk)
    thread.join(timeout=30)
    assert not thread.is_alive() and junk.read_bytes() == b"not a database " * 100
    with pytest.raises(ConfigError, match="is not a usable SQLite database"):
        await schema.connect(junk)
