"""Blobs.receive: bytes and size survive batching; failures leave nothing behind. digest:
size and hashes of a file on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from emulator.blobs import BATCH_BYTES, READ_SIZE, Blobs, TooLarge, digest


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
