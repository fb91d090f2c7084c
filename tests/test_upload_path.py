"""One upload path: tus writes through Blobs as a direct PUT does, so a spent disk reserve
refuses its bytes with the same 507; and the one private aiohttp call
(emulator/routes/uploads.py, buffered_after_failure) fails here if aiohttp changes it,
rather than tus silently losing the bytes that reached the server before a client left."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import StreamReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.test_utils import TestClient

from emulator.errors import STORAGE_FULL_MESSAGE
from emulator.reserve import DiskReserve
from emulator.routes.uploads import buffered_after_failure
from tests.helpers import create_upload, path_of

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {**TUS, "Content-Type": "application/offset+octet-stream"}


async def test_a_spent_reserve_refuses_tus_bytes_as_it_refuses_a_put(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await create_upload(client, auth)
    resp = await client.post(path_of(created["tusEndpoint"]), headers={**TUS, "Upload-Length": "6"})
    assert resp.status == 201, await resp.text()
    location = path_of(resp.headers["Location"])
    resp = await client.patch(location, data=b"abc", headers={**OCTET, "Upload-Offset": "0"})
    assert resp.status == 204, await resp.text()

    monkeypatch.setattr(DiskReserve, "ensure", lambda self: False)  # the disk filled up
    resp = await client.patch(location, data=b"def", headers={**OCTET, "Upload-Offset": "3"})
    assert resp.status == 507
    assert await resp.json() == {"errors": [STORAGE_FULL_MESSAGE]}
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    head = await client.head(location, headers=TUS)
    assert head.headers["Upload-Offset"] == "3"  # what was there stays

    monkeypatch.undo()  # space was freed
    resp = await client.patch(location, data=b"def", headers={**OCTET, "Upload-Offset": "3"})
    assert resp.status == 204, await resp.text()
    assert resp.headers["Upload-Offset"] == "6"


async def test_bytes_buffered_before_a_failure_are_still_handed_out() -> None:
    loop = asyncio.get_running_loop()
    content = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    content.feed_data(b"arrived ")
    content.feed_data(b"before the reset")
    content.set_exception(ConnectionResetError("client went away"))

    # Why the private call: the public read raises first (if this starts passing,
    # aiohttp hands the bytes out itself and buffered_after_failure can go).
    with pytest.raises(ConnectionResetError):
        content.read_nowait(-1)

    assert buffered_after_failure(content) == b"arrived before the reset"
    assert buffered_after_failure(content) == b""


async def test_nothing_buffered_is_nothing() -> None:
    loop = asyncio.get_running_loop()
    content = StreamReader(BaseProtocol(loop), 2**16, loop=loop)
    content.set_exception(ConnectionResetError("client went away"))
    assert buffered_after_failure(content) == b""
