"""GET /ipfs/{cid}: the local IPFS gateway that `storage.ipfs.gatewayUrl` points at.

It serves what IPFS exports pinned (emulator/exports.py): an asset's exported file and its
NFT metadata JSON, by CID, while the asset exists. Range, HEAD and an immutable cache as
a gateway sends them; any other CID is 404.
"""

from __future__ import annotations

from aiohttp import web

from emulator.errors import NotFound
from emulator.exports import Exports
from emulator.routes.common import json_response, public
from emulator.routes.playback import CONTENT_TYPES

EXPORTS = web.AppKey("exports", Exports)
# A CID names its bytes for ever: a gateway lets caches keep them (kubo's header).
IMMUTABLE = "public, max-age=29030400, immutable"


@public
async def get_ipfs(request: web.Request) -> web.StreamResponse:
    content_id = request.match_info["cid"]
    found = await request.app[EXPORTS].pinned(content_id)
    if found is None:
        raise NotFound("not found")
    pinned, path = found
    headers = {
        "Cache-Control": IMMUTABLE,
        "Etag": f'"{content_id}"',
        "X-Ipfs-Path": f"/ipfs/{content_id}",
    }
    if path is not None:
        fmt = (pinned.asset.doc.get("videoSpec") or {}).get("format")
        headers["Content-Type"] = CONTENT_TYPES.get(str(fmt), "application/octet-stream")
        return web.FileResponse(path, headers=headers)
    return _bytes_response(request, pinned.content or b"", headers)


def _bytes_response(request: web.Request, body: bytes, headers: dict[str, str]) -> web.Response:
    """The NFT metadata JSON (small, held in the store), with Range as for files."""
    headers = {**headers, "Content-Type": "application/json", "Accept-Ranges": "bytes"}
    try:
        wanted = request.http_range
    except ValueError:
        wanted = slice(None)
    if wanted.start is None and wanted.stop is None:
        return web.Response(body=body, headers=headers)
    start, stop, _ = wanted.indices(len(body))
    if wanted.start is not None and wanted.start < 0:  # a suffix range: the last N bytes
        start = max(len(body) + wanted.start, 0)
    if start >= len(body) or start >= stop:
        return json_response(
            {"errors": ["range not satisfiable"]},
            status=416,
            headers={"Content-Range": f"bytes */{len(body)}"},
        )
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(body)}"
    return web.Response(body=body[start:stop], status=206, headers=headers)
