"""A few MiB kept aside in the data dir, so the database can still commit on a full disk.

SQLite needs free space to commit anything, a DELETE included (WAL pages are appended).
With the disk full, the API could then no longer free space at all. The reserve file
holds some back: when a write to the database finds the disk full, the store releases
the reserve and tries once more, so deleting assets and resetting tenants keep working.
While the reserve is missing, new media is refused (507) until it can be put back, which
the next upload tries first: space freed by deletions refills it before anything else.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_BYTES = 8 * 1024 * 1024
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


class DiskReserve:
    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size

    def ensure(self) -> bool:
        """Put the reserve in place if it is not; False when the disk has no room for it."""
        try:
            if self.path.exists() and self.path.stat().st_size >= self.size:
                return True
            partial = self.path.with_suffix(".part")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse file
            finally:
                os.close(fd)
            os.replace(partial, self.path)
            return True
        except OSError as exc:
            self.path.with_suffix(".part").unlink(missing_ok=True)
            if not is_disk_full(exc):
                log.warning("cannot keep the disk reserve at %s: %s", self.path, exc)
            return False

    def release(self) -> bool:
        """Free the reserve's space; False if there was none to free."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        log.warning("the data dir's disk is full: released the %d-byte reserve", self.size)
        return True
