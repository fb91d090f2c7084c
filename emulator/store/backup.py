"""A consistent copy of a database file, by SQLite's online backup API: the copy is one
snapshot of committed data (never a file copied while pages change under it), written
beside its destination and renamed into place, so a reader never finds half of it."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from emulator.errors import ConfigError


def backup_database(source: Path, dest: Path) -> None:
    """Copy the database at `source` to `dest` (replaced whole). Raises ConfigError if
    `source` is missing or is not an SQLite database."""
    if not source.is_file():
        raise ConfigError(f"{source}: no such database file")
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    try:
        reader = sqlite3.connect(source)
        try:
            reader.execute("PRAGMA schema_version").fetchone()  # not a database: fails here
            writer = sqlite3.connect(part)
            try:
                reader.backup(writer)
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.Error as exc:
        part.unlink(missing_ok=True)
        raise ConfigError(f"{source}: cannot be read as an SQLite database ({exc})") from None
    os.replace(part, dest)
