"""PUT /api/asset/upload/direct?token=…: the signed direct upload (no API key); and
`upload_body`, how both upload paths (this one and tus, emulator/routes/tus.py) read a
request body."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
from aiohttp import StreamReader, web

from emulator.blobs import CHUNK_SIZE
from emulator.clock import real_timeout
from emulator.errors import ApiError
from emulator.routes.common import SETTINGS, UPLOADS, public


class UploadStalled(ApiError):
    """No byte of the body arrived for --upload-idle-timeout seconds. 408 is what Studio's
    front proxies (and Node's own request timeout) answer a client that went quiet."""

    status = 408


class ServerStopping(ApiError):
    """The server is stopping: what a load balancer answers for a pod going away, and a
    status both the SDKs' and tus-js-client's retries take as worth another try."""

    status = 503


class OpenBodies:
    """The upload bodies being read, so that a stopping server cuts them at once rather
    than waiting for them: a body may take minutes, tus keeps what arrived, and a direct
    PUT's client retries it."""

    def __init__(self) -> None:
        self._readers: set[StreamReader] = set()
        self.stopping = False

    @contextlib.contextmanager
    def reading(self, content: StreamReader) -> Iterator[None]:
        self._readers.add(content)
        try:
            yield
        finally:
            self._readers.discard(content)

    def cut(self) -> None:
        self.stopping = True
        for content in self._readers:
            # Wakes the read waiting on it; upload_body turns it into ServerStopping.
            content.set_exception(ConnectionResetError("server is stopping"))


OPEN_BODIES = web.AppKey("open_bodies", OpenBodies)


async def cut_open_bodies(app: web.Application) -> None:
    """on_shutdown: runs before aiohttp waits for open requests to end."""
    app[OPEN_BODIES].cut()


def buffered_after_failure(content: StreamReader) -> bytes:
    """What a body's reader still holds once its connection has failed.

    When the client is gone (or the server cut the body to stop), aiohttp's public reads
    raise that error before handing out what had already arrived and sits in the buffer
    (about its read high-water mark). There is no public API for those bytes, so this
    takes them through the private `_read_nowait`: the one place that does, and
    tests/test_upload_path.py fails if aiohttp changes it.
    """
    return content._read_nowait(-1)


async def upload_body(request: web.Request) -> AsyncIterator[bytes]:
    """The request body in bounded chunks, including what arrived before a disconnect.

    A client that goes quiet mid-body (a dead network, a stalled sender) would otherwise
    hold its upload, and the lock on it, until the OS gives up on the connection: after
    --upload-idle-timeout seconds without a byte, this raises UploadStalled instead; when
    the server stops, ServerStopping. Either way what was read before stays read, so tus
    keeps it.
    """
    content = request.content
    idle = request.app[SETTINGS].upload_idle_timeout
    bodies = request.app[OPEN_BODIES]
    with bodies.reading(content):
        try:
            while True:
                # What has already arrived is taken without arming a timer: the common
                # case while a client streams faster than the disk writes.
                chunk = content.read_nowait(CHUNK_SIZE)
                if not chunk:
                    if content.is_eof():
                        return
                    if bodies.stopping:  # begun after the cut: take no more than was here
                        raise ServerStopping("server is stopping")
                    chunk = await real_timeout(content.read(CHUNK_SIZE), idle)
                    if not chunk:
                        return
                yield chunk
        except asyncio.TimeoutError:
            raise UploadStalled(f"upload stalled: no data received for {idle:g} s") from None
        except (ConnectionError, aiohttp.ClientPayloadError):
            # tus keeps every byte that reached the server: those still buffered too.
            leftover = buffered_after_failure(content)
            if leftover:
                yield leftover
            if bodies.stopping:
                raise ServerStopping("server is stopping") from None
            raise


@public
async def upload_direct(request: web.Request) -> web.Response:
    await request.app[UPLOADS].receive_upload(request.query.get("token"), upload_body(request))
    return web.Response(status=200)
