"""Media files on disk under the data dir.

Bodies arrive as a stream of chunks and go to a partial file; only a complete body is
renamed into place, so a half-finished upload never looks like media. A direct PUT (or
URL import) is one body, `receive`; a resumable upload (tus) is a partial file kept by
key under partial/tus/ that bodies `append` to until it is `commit`ted. Writes run in a
worker thread, one batch behind the network read, so the event loop keeps serving while
large files stream in. Hashing is not done here: it costs about twice what receiving
does, so it happens afterwards (`digest`), while the asset waits for processing, as
Studio hashes during processing rather than while the client is still sending.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Collection, Iterator
from pathlib import Path
from typing import BinaryIO

from emulator.errors import STORAGE_FULL_MESSAGE, InsufficientStorage
from emulator.keyed import KeyedLocks
from emulator.models import Digests, ReceivedFile
from emulator.reserve import DiskReserve, is_disk_full

CHUNK_SIZE = 256 * 1024
# Chunks go to the worker thread in batches of this many bytes: each hand-over costs a
# thread wake-up and a loop wake-up (and GIL hand-offs), so a 1 GiB PUT costs about 0.8
# CPU s in 4 MiB batches against 1.25 in 1 MiB ones (bench/upload.py). Memory is one
# batch being filled plus one being written, about 8 MiB per upload in flight. tus
# PATCHes use smaller batches (emulator/tus.py says why).
BATCH_BYTES = 4 * 1024 * 1024
READ_SIZE = 1024 * 1024  # what `digest` reads at a time

_heap_keeps_batches = False


def _keep_freed_batches_in_the_heap() -> None:
    """Once per process: let glibc's malloc keep a freed batch for the next one.

    Every socket read gives aiohttp a new bytes object (up to 256 KiB) for the body, and
    a batch of them is freed at once when the worker has written it. glibc gives the top
    of its heap back to the OS whenever more than its trim threshold is free there; that
    threshold is twice the mmap threshold, which starts at 128 KiB and rises only when a
    larger mmapped block is freed. So each freed batch went back to the OS and the next
    chunks page-faulted it in again: about 85,000 minor faults per GiB (a third of the
    body), the bulk of the PUT's extra CPU over the bare handler (about 0.25 s/GiB of
    kernel time; bench/upload.py prints both processes' faults), while the bare handler,
    trained by its own larger frees, had about 2,000.

    Freeing one block of two batches raises both thresholds (mmap to 8 MiB, trim to
    16 MiB), as glibc does by itself after any large free, so a batch's memory stays in
    the heap for the next: RSS keeps about two batches that it used to return. The block
    comes from calloc (`bytes(n)`), which maps it without touching a page. Nothing
    happens on other allocators, nor when MALLOC_TRIM_THRESHOLD_ or mallopt fixed the
    thresholds (that turns glibc's adjustment off).
    """
    global _heap_keeps_batches
    if not _heap_keeps_batches:
        _heap_keeps_batches = True
        bytes(2 * BATCH_BYTES)


class TooLarge(Exception):
    """The stream went past the byte limit it was given."""


class BatchWriter:
    """Writes a stream of chunks to an open file from a worker thread, a batch of about
    `batch_bytes` at a time and one batch behind the network read.

    Whatever was read is written even when the stream fails or goes past the limit (the
    offending chunk aside), so tus keeps every byte that reached the server; `written`
    counts what is in the file. When `write` returns or raises, the worker is done with
    the file, so the caller may close it.
    """

    def __init__(self, file: BinaryIO, batch_bytes: int = BATCH_BYTES) -> None:
        self.file = file
        self.batch_bytes = batch_bytes
        self.written = 0

    async def write(self, chunks: AsyncIterator[bytes], limit: int | None = None) -> None:
        """Raises TooLarge before writing a chunk that would take the total past `limit`."""
        _keep_freed_batches_in_the_heap()
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        batch: list[bytes] = []
        read = batched = 0
        try:
            async for chunk in chunks:
                if limit is not None and read + len(chunk) > limit:
                    raise TooLarge(f"larger than {limit} bytes")
                read += len(chunk)
                batch.append(chunk)
                batched += len(chunk)
                if batched < self.batch_bytes:
                    continue
                if pending is not None:
                    # Shielded: if the request is cancelled, `finally` still waits for the
                    # worker instead of letting the caller close the file under it.
                    await asyncio.shield(pending)
                pending = loop.run_in_executor(None, self._write, batch)
                batch, batched = [], 0
        finally:
            flush = asyncio.ensure_future(self._flush(pending, batch))
            try:
                await asyncio.shield(flush)
            except asyncio.CancelledError:
                await asyncio.wait([flush])  # cancelled meanwhile: still let it finish
                raise

    async def _flush(self, pending: asyncio.Future[None] | None, batch: list[bytes]) -> None:
        """Wait for the batch in the worker, then write the last one (in order: two
        workers at once could interleave their writes)."""
        if pending is not None:
            await pending
        if batch:
            await asyncio.get_running_loop().run_in_executor(None, self._write, batch)

    def _write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.file.write(chunk)
            self.written += len(chunk)


def _open_at(path: Path, offset: int) -> BinaryIO:
    """The file positioned at `offset`, created if missing; bytes past it go (a resumable
    upload's bytes past its offset were never acknowledged)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    file = path.open("r+b" if path.exists() else "w+b")
    file.truncate(offset)
    file.seek(offset)
    return file


@contextlib.contextmanager
def _disk_full_as_507() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if is_disk_full(exc):
            raise InsufficientStorage(STORAGE_FULL_MESSAGE) from exc
        raise


def _hash_file(path: Path, algorithm: str) -> tuple[str, int]:
    h, size = hashlib.new(algorithm), 0
    with path.open("rb") as f:
        while chunk := f.read(READ_SIZE):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


async def digest(path: Path) -> Digests:
    """Size, md5 and sha256 of a file, each hash in its own worker thread (hashlib
    releases the GIL, and md5 cannot be split), reading in bounded pieces."""
    loop = asyncio.get_running_loop()
    md5 = loop.run_in_executor(None, _hash_file, path, "md5")
    sha256 = loop.run_in_executor(None, _hash_file, path, "sha256")
    (md5_hex, size), (sha256_hex, _) = await md5, await sha256
    return Digests(size=size, md5=md5_hex, sha256=sha256_hex)


class Blobs:
    def __init__(self, root: Path, reserve: DiskReserve | None = None) -> None:
        self.root = root
        self.reserve = reserve  # refuse new media while the disk's reserve is spent
        self.media_dir = root / "media"
        self.partial_dir = root / "partial"
        self.resumable_dir = self.partial_dir / "tus"  # kept across restarts, by key
        # One way in for an asset's media at a time, by asset id: held for a whole direct
        # PUT, and by a tus creation while it claims the asset (emulator/tus.py).
        self.writers = KeyedLocks()

    def prepare(self) -> None:
        """Make the folders, and drop what a killed process left half-written: a direct
        PUT or URL import whose partial file never became media (the asset still waits
        for its bytes, or the import runs again). Resumable partials stay: their owner
        says which to keep (`keep_only`)."""
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.partial_dir.glob("*.part"):
            leftover.unlink(missing_ok=True)

    def media_path(self, asset_id: str) -> Path:
        return self.media_dir / asset_id / "source"

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    async def receive(
        self, chunks: AsyncIterator[bytes], asset_id: str, *, max_bytes: int | None = None
    ) -> ReceivedFile:
        """Stream `chunks` into the asset's media file; nothing is left behind on failure.
        Raises InsufficientStorage when the disk is (or fills up) full."""
        self._check_room()
        partial = self.partial_dir / f"{uuid.uuid4()}.part"
        try:
            with _disk_full_as_507():
                with partial.open("wb") as f:
                    await BatchWriter(f).write(chunks, max_bytes)
                return self._place(partial, asset_id)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    # -- resumable uploads: a partial file per key, appended to until committed -----------

    def partial(self, key: str) -> Path:
        """The resumable partial file for `key` (a name, such as a playbackId)."""
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"not a partial file's key: {key!r}")
        return self.resumable_dir / f"{key}.part"

    def size(self, key: str) -> int:
        """How many bytes `key`'s partial file holds (0 before the first)."""
        try:
            return self.partial(key).stat().st_size
        except FileNotFoundError:
            return 0

    async def append(
        self,
        key: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        *,
        limit: int | None = None,
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        """Write `chunks` into `key`'s partial file from `offset` on, dropping any bytes
        past `offset` first. Raises TooLarge before a chunk that would take it past
        `limit` bytes, and InsufficientStorage when the disk is (or fills up) full.

        Whatever arrived stays in the file even when the stream fails: afterwards, raised
        or not, `size(key)` is how far the upload has got.
        """
        self._check_room()
        with _disk_full_as_507():
            file = await self._open_in_worker(self.partial(key), offset)
            try:
                await BatchWriter(file, batch_bytes).write(chunks, limit)
            finally:
                file.close()

    def commit(self, key: str, asset_id: str) -> ReceivedFile:
        """`key`'s partial file, now complete, becomes the asset's media."""
        partial = self.partial(key)
        with _disk_full_as_507():
            partial.parent.mkdir(parents=True, exist_ok=True)
            partial.touch()  # an empty upload never had a byte written
            return self._place(partial, asset_id)

    def discard(self, key: str) -> None:
        self.partial(key).unlink(missing_ok=True)

    def keep_only(self, keys: Collection[str]) -> None:
        """Drop the resumable partial files of every key but these (at startup: an upload
        deleted while the server was down leaves its file behind)."""
        keep = {self.partial(key).name for key in keys}
        self.resumable_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.resumable_dir.iterdir():
            if leftover.name not in keep:
                leftover.unlink(missing_ok=True)

    # -- shared ---------------------------------------------------------------------------

    def _check_room(self) -> None:
        """Refuse new bytes while the disk's reserve is spent (emulator/reserve.py)."""
        if self.reserve is not None and not self.reserve.ensure():
            raise InsufficientStorage(STORAGE_FULL_MESSAGE)

    def _place(self, partial: Path, asset_id: str) -> ReceivedFile:
        """Rename a complete partial file into the asset's media path."""
        target = self.media_path(asset_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        size = partial.stat().st_size
        os.replace(partial, target)
        return ReceivedFile(path=target, size=size)

    @staticmethod
    async def _open_in_worker(path: Path, offset: int) -> BinaryIO:
        """_open_at in a worker thread (cutting a large file takes a while). A request
        cancelled meanwhile still waits for it, to close what it opened."""
        opening = asyncio.get_running_loop().run_in_executor(None, _open_at, path, offset)
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            await asyncio.wait([opening])
            if opening.exception() is None:
                opening.result().close()
            raise

    def remove_asset_media(self, relative: str | None) -> None:
        if relative:
            shutil.rmtree(self.resolve(relative).parent, ignore_errors=True)
