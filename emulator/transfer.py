"""`livepeer-emulator export DIR` / `import DIR`: a data dir's state moved between
machines (a CI artifact, a teammate's reproduction).

Both work on a data dir no server is using: stop the server first. The database is
copied by SQLite's online backup API (emulator/store/backup.py), last and renamed into
place, so a copy that was cut short has no database and is refused on import rather
than read half-made. The files copied with it are what the database points at: the
uploaded media and their outputs (`media/`), the outputs cache by SHA-256 (`cache/`) and
unfinished tus uploads (`partial/tus/`). Half-written uploads (the rest of `partial/`)
and the disk reserve are not state: a start deletes or remakes them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from emulator.errors import ConfigError
from emulator.store import backup_database

DATABASE = "emulator.sqlite3"
FILE_DIRS = ("media", "cache", "partial/tus")
# What a data dir holds that export writes and import --force replaces.
_ENTRIES = (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", "media", "cache", "partial")


def export_data(data_dir: Path, dest: Path, *, force: bool = False) -> str:
    """Copy `data_dir`'s state into `dest`; returns one line saying what was copied."""
    if not (data_dir / DATABASE).is_file():
        raise ConfigError(f"{data_dir} holds no emulator data ({DATABASE} is missing)")
    _make_room(dest, force, "export into", "--force replaces its emulator data")
    files = _copy_files(data_dir, dest)
    backup_database(data_dir / DATABASE, dest / DATABASE)
    return f"exported {data_dir} to {dest}: the database and {files} file(s)"


def import_data(source: Path, data_dir: Path, *, force: bool = False) -> str:
    """Copy an export in `source` into `data_dir`; returns one line saying what was copied."""
    if not (source / DATABASE).is_file():
        raise ConfigError(
            f"{source} is not an export ({DATABASE} is missing: an unfinished export has none)"
        )
    _make_room(data_dir, force, "import into", "--force replaces what it holds")
    files = _copy_files(source, data_dir)
    backup_database(source / DATABASE, data_dir / DATABASE)
    return f"imported {source} into {data_dir}: the database and {files} file(s)"


def _make_room(target: Path, force: bool, what: str, hint: str) -> None:
    if target.exists() and not target.is_dir():
        raise ConfigError(f"cannot {what} {target}: not a directory")
    if target.is_dir() and any(target.iterdir()):
        if not force:
            raise ConfigError(f"will not {what} {target}: it is not empty ({hint})")
        # Only what export and import write: --force on a wrong directory must not
        # empty it. The old database goes first, with its WAL: a stale WAL beside the
        # new file would be replayed into it.
        for name in _ENTRIES:
            path = target / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
    target.mkdir(parents=True, exist_ok=True)


def _copy_files(source: Path, dest: Path) -> int:
    copied = 0
    for name in FILE_DIRS:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, symlinks=False)
            copied += sum(1 for p in (dest / name).rglob("*") if p.is_file())
    return copied
