"""What every handler shares: app keys, the caller's tenant and origin, JSON in and out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from aiohttp import web

from emulator.errors import PayloadTooLarge
from emulator.service import Service
from emulator.settings import Settings
from emulator.validation import Schema, validate
from emulator.wire import MAX_JSON_BYTES, dumps, parse_json

SERVICE = web.AppKey("service", Service)
SETTINGS = web.AppKey("settings", Settings)
TENANT: web.RequestKey[str | None] = web.RequestKey("tenant")  # None: anonymous
# Set by fault injection when a scenario rule changed this request, so the request
# journal can record it; the value describes the rule.
INJECTED_FAULT: web.RequestKey[str] = web.RequestKey("injected_fault")
# The JSON body read_body took, so the request journal can show it.
REQUEST_BODY: web.RequestKey[bytes] = web.RequestKey("request_body")

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])


def public(handler: H) -> H:
    """Mark a handler that needs no API key (uploads by token, playback, control plane)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def is_public(request: web.Request) -> bool:
    route = request.match_info.route
    # Unmatched paths get aiohttp's system route: Studio's catch-all 404 needs no key.
    return route.resource is None or getattr(route.handler, "public", False)


def service(request: web.Request) -> Service:
    return request.app[SERVICE]


def tenant(request: web.Request) -> str:
    """The caller's tenant; the auth middleware guarantees one on non-public routes."""
    value = request[TENANT]
    assert value is not None
    return value


def optional_tenant(request: web.Request) -> str | None:
    return request.get(TENANT)


async def caller_tenant(request: web.Request) -> str | None:
    """The key's tenant or, for a signed or tus upload (which carry no key), the uploader's;
    None when anonymous. Costs a lookup for uploads, so only fault injection and the
    journal ask."""
    who = optional_tenant(request)
    tus_id = request.match_info.get("upload_id")
    if who is None and ("token" in request.query or tus_id):
        tus_upload = unquote(tus_id) if tus_id else None
        who = await service(request).tenant_of_upload_token(request.query.get("token"), tus_upload)
    return who


def origin(request: web.Request) -> str:
    """Scheme and host for absolute URLs: --public-url, else what the client called."""
    configured = request.app[SETTINGS].public_url
    if configured:
        return configured
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    return f"{proto}://{host}"


async def read_body(request: web.Request, limit: int = MAX_JSON_BYTES) -> bytes:
    """A small body, refused with 413 once it passes `limit` (never read unbounded)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge("request entity too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge("request entity too large")
        chunks.append(chunk)
    body = b"".join(chunks)
    request[REQUEST_BODY] = body
    return body


async def read_json(request: web.Request, schema: Schema) -> dict[str, Any]:
    return validate(parse_json(await read_body(request)), schema)


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=dumps(data), status=status, content_type="application/json", headers=headers
    )


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"errors": [message]}, status=status, headers=headers)


def paged(
    request: web.Request, items: list[Any], limit: int, offset: int, total: int | None
) -> web.Response:
    """A bare array, with Studio's `Link: <…cursor=skipN>; rel="next"` on full pages."""
    headers: dict[str, str] = {}
    if len(items) == limit:
        next_url = request.rel_url.update_query(cursor=f"skip{offset + limit}")
        headers["Link"] = f'<{origin(request)}{next_url}>; rel="next"'
    if total is not None:
        headers["X-Total-Count"] = str(total)
    return json_response(items, headers=headers)
