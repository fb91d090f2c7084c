"""What every handler shares: app keys, the caller's tenant and origin, JSON in and out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote

from aiohttp import web

from emulator.assets import Assets
from emulator.errors import BadRequest, Forbidden, PayloadTooLarge, UnsupportedMediaType
from emulator.processing import Processing
from emulator.rulebook import Rulebook
from emulator.scheduler import Scheduler
from emulator.settings import Settings
from emulator.tenancy import Tenancy
from emulator.uploads import Uploads
from emulator.validation import Schema, validate
from emulator.wire import MAX_JSON_BYTES, dumps, parse_json

# The parts app.py builds once; each handler asks for the one it calls.
ASSETS = web.AppKey("assets", Assets)
UPLOADS = web.AppKey("uploads", Uploads)
PROCESSING = web.AppKey("processing", Processing)
SCHEDULER = web.AppKey("scheduler", Scheduler)
RULES = web.AppKey("rules", Rulebook)
TENANCY = web.AppKey("tenancy", Tenancy)
SETTINGS = web.AppKey("settings", Settings)
TENANT: web.RequestKey[str | None] = web.RequestKey("tenant")  # None: anonymous
# Set by authentication for a call with a key: the key's name (Studio's req.token.name,
# which assets record as createdByTokenName).
TOKEN_NAME: web.RequestKey[str] = web.RequestKey("token_name")
# Set by authentication: the key is an --admin-key, which may act on every tenant.
ADMIN: web.RequestKey[bool] = web.RequestKey("admin")
# Set by authentication when a key sent with an Origin on an API path allows that origin
# (a CORS-enabled key), so the cors middleware adds the CORS headers to the answer.
CORS_ALLOWED: web.RequestKey[bool] = web.RequestKey("cors_allowed")
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


def no_api_keys(handler: H) -> H:
    """Mark a handler Studio closes to API keys (`authorizer({noApiToken: true})`)."""
    handler.no_api_keys = True  # type: ignore[attr-defined]
    return handler


def is_public(request: web.Request) -> bool:
    route = request.match_info.route
    # Unmatched paths get aiohttp's system route: Studio's catch-all 404 needs no key.
    return route.resource is None or getattr(route.handler, "public", False)


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
        token = request.query.get("token")
        who = await request.app[UPLOADS].tenant_of_upload_token(token, tus_upload)
    return who


def control_scope(request: web.Request, everyone: bool, action: str) -> str | None:
    """The tenant a control-plane call acts on, or None for every tenant.

    `everyone` is the caller asking for all tenants (`{"all": true}`, `?scope=global`,
    `?all=true`); a key-less call asks for all too. With keys configured (where
    authentication has already refused key-less calls) only an admin key may: `action`
    names what was refused.
    """
    who = optional_tenant(request)
    if who is not None and not everyone:
        return who
    if request.app[SETTINGS].control_locked and not request.get(ADMIN, False):
        raise Forbidden(
            f"{action} needs an admin key (--admin-key / LIVEPEER_EMULATOR_ADMIN_KEY); "
            "an API key acts on its own tenant only"
        )
    return None


def entry_scope(request: web.Request) -> str | None:
    """Whose entries a control-plane lookup by id may return: the caller's tenant, or
    anyone's (None) for an admin key or a key-less call (authentication refuses those
    once keys are configured)."""
    who = optional_tenant(request)
    return None if who is None or request.get(ADMIN, False) else who


CONTROL_LIMIT = 100  # entries per page of a control-plane list, unless ?limit= says
CONTROL_MAX_LIMIT = 1000


def control_page(request: web.Request) -> int:
    """?limit= of a control-plane list (newest first, paged by ?before=): 1 to 1000."""
    raw = request.query.get("limit", "")
    if raw == "":
        return CONTROL_LIMIT
    # ASCII digits only: str.isdigit also takes "²" and other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or int(raw) < 1:
        raise BadRequest(f"limit must be a whole number from 1 to {CONTROL_MAX_LIMIT}")
    return min(int(raw), CONTROL_MAX_LIMIT)


def everyone_asked(request: web.Request) -> bool:
    """?all=true on a control-plane read or clear: every tenant's entries."""
    raw = request.query.get("all", "").lower()
    if raw not in ("", "true", "false", "1", "0"):
        raise BadRequest(f"all must be true or false, not {raw!r}")
    return raw in ("true", "1")


def next_page(request: web.Request, items: list[Any], limit: int, before: str) -> dict[str, str]:
    """Studio's `Link: <…>; rel="next"` header on a full page, pointing at ?before=."""
    if len(items) < limit:
        return {}
    next_url = request.rel_url.update_query(before=before)
    return {"Link": f'<{origin(request)}{next_url}>; rel="next"'}


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
    """The body as JSON, validated; on Studio's routes only when it is sent as JSON.

    Studio's `bodyParser.json()` (app-router.ts) reads a body only when its Content-Type
    is `application/json`: anything else (`text/plain` from fetch with a string,
    `curl -d`'s form type, none at all) leaves the body `{}`, which the schema then judges.
    The control plane is the emulator's own, and takes JSON whatever the type says.
    """
    if request.path.startswith("/api/") and not sent_as_json(request):
        return validate({}, schema)
    return validate(parse_json(await read_body(request)), schema)


def sent_as_json(request: web.Request) -> bool:
    """type-is's `application/json` (any parameters); refuses a charset body-parser
    cannot read, with its 415."""
    if "Content-Type" not in request.headers or request.content_type != "application/json":
        return False
    charset = (request.charset or "utf-8").lower()
    if not charset.startswith("utf-"):
        raise UnsupportedMediaType(f'unsupported charset "{charset.upper()}"')
    return True


JSON_TYPE = "application/json; charset=utf-8"  # what web.Response(text=…) writes for JSON


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=dumps(data), status=status, content_type="application/json", headers=headers
    )


def json_body(body: bytes, status: int = 200) -> web.Response:
    """A JSON answer already encoded (by wire.dumps), with json_response's headers."""
    return web.Response(body=body, status=status, headers={"Content-Type": JSON_TYPE})


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return json_response({"errors": [message]}, status=status, headers=headers)


def paged(
    request: web.Request, items: list[Any], limit: int, offset: int, total: int | None
) -> web.Response:
    """A bare array, with Studio's `Link: <…cursor=skipN>; rel="next"` on full pages."""
    headers = _page_headers(request, len(items), limit, offset, total)
    return json_response(items, headers=headers)


def paged_encoded(
    request: web.Request, items: list[bytes], limit: int, offset: int, total: int | None
) -> web.Response:
    """paged() for items already encoded by wire.dumps: the same bytes as dumps(list)."""
    headers = _page_headers(request, len(items), limit, offset, total)
    headers["Content-Type"] = JSON_TYPE
    return web.Response(body=b"[" + b",".join(items) + b"]", headers=headers)


def _page_headers(
    request: web.Request, count: int, limit: int, offset: int, total: int | None
) -> dict[str, str]:
    headers: dict[str, str] = {}
    if count == limit:
        next_url = request.rel_url.update_query(cursor=f"skip{offset + limit}")
        headers["Link"] = f'<{origin(request)}{next_url}>; rel="next"'
    if total is not None:
        headers["X-Total-Count"] = str(total)
    return headers
