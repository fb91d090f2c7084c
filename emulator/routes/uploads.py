"""PUT /api/asset/upload/direct?token=…: the signed direct upload (no API key)."""

from __future__ import annotations

from aiohttp import web

from emulator.blobs import CHUNK_SIZE
from emulator.routes.common import public, service


@public
async def upload_direct(request: web.Request) -> web.Response:
    chunks = request.content.iter_chunked(CHUNK_SIZE)
    await service(request).receive_upload(request.query.get("token"), chunks)
    return web.Response(status=200)
