"""Media files on disk under the data dir.

Bodies arrive as a stream of chunks and go to a partial file while md5 and sha256 are
computed on the way; only a complete body is renamed into place, so a half-finished upload
never looks like media. Hashing and writing run in worker threads, one batch behind the
network read, so the event loop keeps serving while large files stream in.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from emulator.models import ReceivedFile

CHUNK_SIZE = 256 * 1024
# Chunks go to the worker thread in batches of this many bytes: each hand-over costs a
# thread wake-up and a loop wake-up, which for 256 KiB chunks added about a third to the
# CPU cost of a large upload (bench/upload.py). Memory stays bounded: one batch being
# filled plus one being written, about 2 x 4 MiB per upload in flight.
BATCH_BYTES = 4 * 1024 * 1024


class TooLarge(Exception):
    """The stream went past the byte limit it was given."""


class _Sink:
    """A partial file plus its running hashes.

    Each batch goes to two worker threads at once: one for md5, one for the file and
    sha256 (hashlib and file writes release the GIL, and md5 alone costs about as much as
    the rest together), so with a spare core a large upload streams about a quarter
    faster. `take` returns only when both are done with the batch.
    """

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.size = 0

    async def take(self, chunks: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        md5 = loop.run_in_executor(None, self._md5, chunks)
        rest = loop.run_in_executor(None, self._write, chunks)
        await asyncio.wait((md5, rest))
        md5.result()
        rest.result()

    def _md5(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.md5.update(chunk)

    def _write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.file.write(chunk)
            self.sha256.update(chunk)
            self.size += len(chunk)


class Blobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.media_dir = root / "media"
        self.partial_dir = root / "partial"

    def prepare(self) -> None:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)

    def media_path(self, asset_id: str) -> Path:
        return self.media_dir / asset_id / "source"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    async def receive(
        self, chunks: AsyncIterator[bytes], asset_id: str, *, max_bytes: int | None = None
    ) -> ReceivedFile:
        """Stream `chunks` into the asset's media file; nothing is left behind on failure."""
        partial = self.partial_dir / f"{uuid.uuid4()}.part"
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        batch: list[bytes] = []
        received = handed_over = 0
        try:
            with partial.open("wb") as f:
                sink = _Sink(f)
                try:
                    async for chunk in chunks:
                        received += len(chunk)
                        if max_bytes is not None and received > max_bytes:
                            raise TooLarge(f"larger than {max_bytes} bytes")
                        batch.append(chunk)
                        if received - handed_over < BATCH_BYTES:
                            continue
                        if pending is not None:
                            # Shielded: if this upload is cancelled, `finally` below still
                            # waits for the workers instead of closing the file under them.
                            await asyncio.shield(pending)
                        pending = loop.create_task(sink.take(batch))
                        batch, handed_over = [], received
                    if pending is not None:
                        await asyncio.shield(pending)
                    pending = loop.create_task(sink.take(batch))  # the rest
                finally:
                    # The workers must be done with the file before it is closed.
                    if pending is not None:
                        await asyncio.shield(pending)
            target = self.media_path(asset_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return ReceivedFile(
            path=target, size=sink.size, md5=sink.md5.hexdigest(), sha256=sink.sha256.hexdigest()
        )

    def remove_asset_media(self, relative: str | None) -> None:
        if relative:
            shutil.rmtree(self.resolve(relative).parent, ignore_errors=True)
