"""/api/asset/upload/tus[/<id>]: the tus endpoints (no API key; the token only on creation).

The upload id is matched from the raw path so that `directUpload%2F<playbackId>`, the
form Studio hands out and tus clients send back, works as well as a decoded slash.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from emulator.errors import ApiError
from emulator.routes.common import origin, public
from emulator.routes.uploads import upload_body
from emulator.tus import TUS_VERSION, Reply, TusError, TusUploads

TUS = web.AppKey("tus", TusUploads)

TusHandler = Callable[[web.Request], Awaitable[Reply]]


def _tus(handler: TusHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Reply → response; protocol errors as plain text, as Studio's tus server sends them."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.Response:
        try:
            reply = await handler(request)
        except TusError as exc:
            return web.Response(status=exc.status, text=exc.message, headers=exc.headers)
        except ApiError as exc:
            exc.headers.setdefault("Tus-Resumable", TUS_VERSION)
            raise
        return web.Response(status=reply.status, headers=reply.headers)

    return public(wrapped)


def _uploads(request: web.Request) -> TusUploads:
    return request.app[TUS]


PREFIX = "/api/asset/upload/tus/"


def _upload_id(request: web.Request) -> str:
    """The id as sent (still percent-encoded); the route guarantees the prefix."""
    path = request.raw_path.split("?", 1)[0]
    return path[len(PREFIX) :].rstrip("/") if path.startswith(PREFIX) else ""


@_tus
async def options(request: web.Request) -> Reply:
    return _uploads(request).options()


@_tus
async def create(request: web.Request) -> Reply:
    return await _uploads(request).create(
        request.query.get("token"),
        request.headers,
        upload_body(request),
        origin(request),
    )


@_tus
async def head(request: web.Request) -> Reply:
    return await _uploads(request).head(_upload_id(request), request.headers)


@_tus
async def patch(request: web.Request) -> Reply:
    return await _uploads(request).patch(_upload_id(request), request.headers, upload_body(request))


@_tus
async def terminate(request: web.Request) -> Reply:
    return await _uploads(request).terminate(_upload_id(request), request.headers)
