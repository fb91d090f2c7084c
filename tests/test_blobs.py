"""Blobs.receive: bytes and size survive batching; failures leave nothing behind. The
resumable side (tus): appends at an offset keep what arrived, commit makes it media.
digest: size and hashes of a file on disk."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulator.blobs import BATCH_BYTES, READ_SIZE, BatchWriter, Blobs, TooLarge, digest
from emulator.errors import STORAGE_FULL_MESSAGE, InsufficientStorage
from emulator.reserve import DiskReserve


def _pieces() -> list[bytes]:
    # Uneven sizes, spanning two full batches and a remainder, as a network read gives.
    sizes = [1, 65_536, 262_144, 100_003] * 20 + [7]
    return [os.urandom(n) for n in sizes]


async def _stream(pieces: list[bytes], fail_after: int | None = None) -> AsyncIterator[bytes]:
    for n, piece in enumerate(pieces):
        if fail_after is not None and n == fail_after:
            raise ConnectionResetError("client went away")
        yield piece


@pytest.fixture
def blobs(tmp_path: Path) -> Blobs:
    b = Blobs(tmp_path)
    b.prepare()
    return b


async def test_received_bytes_match_the_body(blobs: Blobs) -> None:
    pieces = _pieces()
    body = b"".join(pieces)
    assert len(body) > 2 * BATCH_BYTES

    received = await blobs.receive(_stream(pieces), "asset-1")

    assert received.path == blobs.media_path("asset-1")
    assert received.path.read_bytes() == body
    assert received.size == len(body)
    assert list(blobs.partial_dir.iterdir()) == []


async def test_digest_gives_size_md5_and_sha256(tmp_path: Path) -> None:
    body = os.urandom(3 * READ_SIZE + 12_345)  # several reads and a remainder
    path = tmp_path / "media"
    path.write_bytes(body)

    got = await digest(path)

    assert got.size == len(body)
    assert got.md5 == hashlib.md5(body).hexdigest()
    assert got.sha256 == hashlib.sha256(body).hexdigest()


async def test_digest_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    got = await digest(path)
    assert (got.size, got.md5, got.sha256) == (
        0,
        hashlib.md5(b"").hexdigest(),
        hashlib.sha256(b"").hexdigest(),
    )


async def test_an_empty_body_is_an_empty_file(blobs: Blobs) -> None:
    received = await blobs.receive(_stream([]), "asset-0")
    assert received.path.read_bytes() == b""
    assert received.size == 0


async def test_too_large_stops_in_a_later_batch_and_keeps_nothing(blobs: Blobs) -> None:
    pieces = _pieces()
    limit = BATCH_BYTES + 12_345
    with pytest.raises(TooLarge, match=f"larger than {limit} bytes"):
        await blobs.receive(_stream(pieces), "asset-2", max_bytes=limit)
    assert not blobs.media_path("asset-2").exists()
    assert list(blobs.partial_dir.iterdir()) == []


async def test_a_broken_stream_keeps_nothing(blobs: Blobs) -> None:
    with pytest.raises(ConnectionResetError):
        await blobs.receive(_stream(_pieces(), fail_after=60), "asset-3")
    assert not blobs.media_path("asset-3").exists()
    assert list(blobs.partial_dir.iterdir()) == []


async def test_a_cancelled_upload_waits_for_its_workers_and_keeps_nothing(blobs: Blobs) -> None:
    stalled = asyncio.Event()

    async def stream() -> AsyncIterator[bytes]:
        for piece in _pieces():
            yield piece
        stalled.set()
        await asyncio.Event().wait()  # the client stops sending, then the server stops

    task = asyncio.create_task(blobs.receive(stream(), "asset-4"))
    await stalled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not blobs.media_path("asset-4").exists()
    assert list(blobs.partial_dir.iterdir()) == []


# -- resumable partial files (tus) ------------------------------------------------------


async def test_appends_resume_at_an_offset_and_commit_becomes_media(blobs: Blobs) -> None:
    await blobs.append("up", 0, _stream([b"hello ", b"wor"]))
    assert blobs.size("up") == 9
    await blobs.append("up", 6, _stream([b"world"]))  # "wor" was never acknowledged

    assert blobs.partial("up").read_bytes() == b"hello world"
    received = blobs.commit("up", "asset-5")

    assert received.path == blobs.media_path("asset-5")
    assert (received.path.read_bytes(), received.size) == (b"hello world", 11)
    assert not blobs.partial("up").exists()


async def test_appends_go_through_batches_in_order(blobs: Blobs) -> None:
    pieces = _pieces()
    half = len(pieces) // 2
    await blobs.append("big", 0, _stream(pieces[:half]), batch_bytes=1024 * 1024)
    await blobs.append("big", blobs.size("big"), _stream(pieces[half:]), batch_bytes=1024 * 1024)
    assert blobs.partial("big").read_bytes() == b"".join(pieces)


async def test_an_empty_upload_commits_an_empty_file(blobs: Blobs) -> None:
    assert blobs.size("empty") == 0
    received = blobs.commit("empty", "asset-6")
    assert (received.path.read_bytes(), received.size) == (b"", 0)


async def test_a_broken_append_keeps_what_arrived(blobs: Blobs) -> None:
    pieces = _pieces()
    with pytest.raises(ConnectionResetError):
        await blobs.append("cut", 0, _stream(pieces, fail_after=60))
    assert blobs.partial("cut").read_bytes() == b"".join(pieces[:60])
    assert blobs.size("cut") == sum(map(len, pieces[:60]))


async def test_too_large_keeps_the_bytes_before_the_chunk_past_the_limit(blobs: Blobs) -> None:
    with pytest.raises(TooLarge):
        await blobs.append("big", 0, _stream([b"a" * 10, b"b" * 10, b"c" * 10]), limit=25)
    assert blobs.partial("big").read_bytes() == b"a" * 10 + b"b" * 10


async def test_a_cancelled_append_keeps_what_arrived_and_closes_its_file(blobs: Blobs) -> None:
    pieces = _pieces()
    stalled = asyncio.Event()

    async def stream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece
        stalled.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(blobs.append("stop", 0, stream()))
    await stalled.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # An unclosed file would be a ResourceWarning, an error under the suite's settings.
    assert blobs.partial("stop").read_bytes() == b"".join(pieces)


class SpentReserve(DiskReserve):
    def ensure(self) -> bool:
        return False


async def test_a_spent_reserve_refuses_new_bytes(tmp_path: Path) -> None:
    blobs = Blobs(tmp_path, SpentReserve(tmp_path / "reserve"))
    blobs.prepare()
    with pytest.raises(InsufficientStorage, match=STORAGE_FULL_MESSAGE):
        await blobs.append("up", 0, _stream([b"x"]))
    with pytest.raises(InsufficientStorage):
        await blobs.receive(_stream([b"x"]), "asset-7")
    assert blobs.size("up") == 0
    assert not blobs.media_path("asset-7").exists()


async def test_a_full_disk_mid_append_is_insufficient_storage(
    blobs: Blobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: BatchWriter, chunks: list[bytes]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(BatchWriter, "_write", full)
    with pytest.raises(InsufficientStorage, match=STORAGE_FULL_MESSAGE):
        await blobs.append("up", 0, _stream([b"x"]))
    assert blobs.size("up") == 0


async def test_discard_and_keep_only_drop_partial_files(blobs: Blobs) -> None:
    for key in ("a", "b", "c"):
        await blobs.append(key, 0, _stream([key.encode()]))
    blobs.discard("a")
    blobs.discard("never-was")
    blobs.keep_only(["b"])
    assert [p.name for p in blobs.resumable_dir.iterdir()] == [blobs.partial("b").name]
    blobs.prepare()  # a restart drops direct PUTs' partials, never resumable ones
    assert blobs.size("b") == 1


@pytest.mark.parametrize("key", ["", "../escape", "a/b", ".hidden"])
def test_a_key_cannot_leave_the_partial_folder(blobs: Blobs, key: str) -> None:
    with pytest.raises(ValueError, match="not a partial file's key"):
        blobs.partial(key)


# Run in a fresh interpreter: the thresholds are per process, and the test process's own
# earlier large frees would already have raised them. The body comes as fresh 256 KiB
# objects, as socket reads give them; only the faults during the write are counted.
_FAULTS_WHILE_WRITING = """
import asyncio, os, resource, sys
from emulator import blobs
src = os.urandom(256 * 1024)
async def body():
    for _ in range(512):
        yield bytes(memoryview(src))
async def main():
    with open(sys.argv[1], "wb") as f:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        await blobs.BatchWriter(f).write(body())
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
asyncio.run(main())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc malloc's thresholds")
def test_freed_batches_are_reused_rather_than_page_faulted_in_again(tmp_path: Path) -> None:
    """A 128 MiB body (32,768 pages) costs about 4,000 minor faults (the two or three
    batches in use, touched once); with glibc's initial thresholds every freed batch went
    back to the OS and it cost about 17,000 (emulator/blobs.py says why)."""
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_WHILE_WRITING, str(tmp_path / "body")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (tmp_path / "body").stat().st_size == 512 * 256 * 1024
    assert int(out.stdout) < 8192
