"""Cross-cutting HTTP concerns: one error path, authentication into tenants, CORS.

Every failure, whether an ApiError from the service, aiohttp's own HTTP exceptions (unknown
route, wrong method) or an unexpected exception, leaves here as Studio's error body.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from emulator.api_keys import RESTRICTED_MESSAGE, ApiKeys, KeyGrant, cors_rules_allow
from emulator.clock import monotonic
from emulator.errors import (
    STORAGE_FULL_MESSAGE,
    ApiError,
    BadRequest,
    Forbidden,
    Unauthorized,
)
from emulator.journal import Journal
from emulator.models import tenant_user_id
from emulator.reserve import is_disk_full
from emulator.routes.common import (
    ADMIN,
    CORS_ALLOWED,
    INJECTED_FAULT,
    REQUEST_BODY,
    TENANT,
    TOKEN_NAME,
    caller_tenant,
    error_response,
    is_public,
    json_response,
)
from emulator.routes.dashboard import from_dashboard

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return json_response({"errors": exc.messages}, exc.status, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status in (404, 405):
            # Studio's routers fall through to one catch-all: an unknown path or method.
            return error_response(404, "not found")
        if exc.status == 413:
            return error_response(413, "request entity too large")
        return error_response(exc.status, exc.reason)
    except (ConnectionError, aiohttp.ClientPayloadError) as exc:
        # The client went away mid-body; nobody is left to read a response.
        log.info("%s %s: client disconnected (%s)", request.method, request.path, exc)
        return error_response(400, "request body was interrupted")
    except Exception as exc:
        if is_disk_full(exc):  # a write the service did not expect to fail (tus, journal)
            log.warning("%s %s: the data dir's disk is full", request.method, request.path)
            return error_response(507, STORAGE_FULL_MESSAGE)
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, f"Internal server error: {type(exc).__name__}")


class QuietProtocolErrors(logging.Filter):
    """Drops aiohttp's per-request ERROR traceback for a request it could not parse (bad
    header bytes, a bad request line): aiohttp has already answered it 400, and anyone on
    the network could otherwise fill the log with one traceback per request. For
    `logging.getLogger("aiohttp.server")`; other errors there keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


def journal(book: Journal) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Record each call with the status the client got, into the request journal.

    It sits outside `errors`, so failures are recorded as answered, and reads the tenant
    only after the handler ran (authentication sets it). The control plane is not
    recorded: tests read the journal through it.
    """

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/") or from_dashboard(request):
            # The dashboard's own polling is not the developer's app's calls.
            return await handler(request)
        started = monotonic()
        try:
            response = await handler(request)
        except BaseException as exc:
            # Redirects leave `errors` as exceptions; anything else: the client went away.
            status = exc.status if isinstance(exc, web.HTTPException) else 499
            _journal_call(book, request, request.get(TENANT), status, None, started)
            raise
        # An upload carries no API key, but it is its uploader's call.
        who = request.get(TENANT)
        try:
            if who is None:  # (a call with a key needs no lookup: most of them)
                who = await caller_tenant(request)
        except Exception:
            # Outside `errors`: a failure here would replace the answer the client already
            # has with aiohttp's plain-text 500. Record the call as anonymous instead.
            log.exception("cannot tell whose call %s %s was", request.method, request.path)
            who = request.get(TENANT)
        _journal_call(book, request, who, response.status, response, started)
        return response

    return record


def _journal_call(
    book: Journal,
    request: web.Request,
    tenant: str | None,
    status: int,
    response: web.StreamResponse | None,
    started: float,
) -> None:
    # Handler time as the client felt it (an injected delay included); copying the
    # bodies below is the journal's own cost, not the call's.
    duration_ms = (monotonic() - started) * 1000
    text = None
    # Only bodies already in memory and meant to be read: never media, never a stream.
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        # The raw header: Response.content_type parses it again on every call.
        kind = response.headers.get(hdrs.CONTENT_TYPE, "").partition(";")[0].strip()
        if kind.startswith("text/") or kind.endswith("json"):
            text = response.body
    book.record(
        tenant=tenant,
        method=request.method,
        path=request.path,
        query=request.query if request.rel_url.raw_query_string else {},
        status=status,
        body=request.get(REQUEST_BODY),
        response=text,
        fault=request.get(INJECTED_FAULT),
        duration_ms=duration_ms,
    )


def authentication(keys: ApiKeys, *, locked: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Bearer (or Basic userId:key) → tenant, by the keys the server accepts (`keys`).

    The checks and their order are Studio's (middleware/auth.ts `authenticator`, then
    `authorizer` on the routes that need a user). An admin key is a valid API key too
    (its own tenant), and is marked ADMIN so the control plane lets it act on every
    tenant. Once any key is configured (`locked`), the control plane (all of /_emulator/*
    but health) needs one: it reads other calls' tokens and can wipe data, so it must
    not stay open on a server that guards its API.
    """
    registry = keys

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        key, basic_user = _credentials(request.headers.get("Authorization"))
        grant = registry.grant(key) if key is not None else None
        if key is not None and (
            grant is None
            # Basic's user must be the key's owner: the userId its objects carry.
            or (basic_user is not None and basic_user != tenant_user_id(grant.tenant))
        ):
            raise Unauthorized(f"no token {key} found")
        if key is not None and _asks_for_project(request):
            # Before any route's own checks: a key belongs to one project already.
            raise BadRequest("projectId as query param not supported")
        request[TENANT] = grant.tenant if grant else None
        request[ADMIN] = grant is not None and grant.admin
        if grant is not None:
            request[TOKEN_NAME] = grant.name
        origin = request.headers.get("Origin")
        if origin == f"{request.scheme}://{request.host}" and from_dashboard(request):
            origin = None  # the dashboard's page, on this server's own origin: not CORS
        if grant is not None and origin and request.path.startswith("/api/"):
            # Studio's cors middleware: the key's origins get CORS headers on every
            # answer, refusals included, so a page can read why it was refused.
            request[CORS_ALLOWED] = grant.allows_origin(origin)
        if key is None and not is_public(request):
            raise Unauthorized("request is not authenticated")
        if key is None and locked and _is_guarded_control(request.path):
            raise Unauthorized("request is not authenticated")
        if grant is not None and _needs_user(request):
            _authorize(request, grant, origin)
        if grant is not None and grant.restricted and _is_guarded_control(request.path):
            # A restricted CORS key is meant to be seen in a web page: it must not
            # reset, read or steer its tenant's data through the control plane.
            raise Forbidden(
                f"{RESTRICTED_MESSAGE}: the control API needs a key without CORS restrictions"
            )
        return await handler(request)

    return authenticate


def _authorize(request: web.Request, grant: KeyGrant, origin: str | None) -> None:
    """Studio's authorizer for a key, in its order: routes closed to API keys, then the
    Origin, then a restricted CORS key's routes (which apply with or without Origin)."""
    if getattr(request.match_info.route.handler, "no_api_keys", False):
        raise Forbidden("access forbidden for API keys")
    if origin and not grant.allows_origin(origin):
        raise Forbidden(f"credential disallows CORS access from origin {origin}")
    if grant.restricted and not cors_rules_allow(request.method, request.path[len("/api") :]):
        raise Forbidden(RESTRICTED_MESSAGE)


def _needs_user(request: web.Request) -> bool:
    """A Studio API route behind `authorizer` (not uploads by token, not playback)."""
    return request.path.startswith("/api/") and not is_public(request)


def _asks_for_project(request: web.Request) -> bool:
    """`req.query.projectId` is truthy: a non-empty value, or the name given twice (an
    array). Only on Studio's API: the media files and control plane are not Studio's."""
    if not request.path.startswith("/api/"):
        return False
    values = request.query.getall("projectId", [])
    return len(values) > 1 or any(values)


def _is_guarded_control(path: str) -> bool:
    """The control plane but its health check, which container runtimes call key-less."""
    return path.startswith("/_emulator/") and path.rstrip("/") != "/_emulator/health"


def _credentials(header: str | None) -> tuple[str | None, str | None]:
    """(key, Basic's user) an Authorization header carries; key None when anonymous."""
    if not header:
        return None, None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if not scheme or not credentials:
        return None, None  # not "scheme token": Studio treats the request as anonymous
    kind = scheme.lower()
    if kind == "bearer":
        return _spelled(credentials), None
    if kind == "basic":
        user, password = _basic_user_pass(credentials)
        if not password:
            raise Unauthorized("no authorization token provided")
        return _spelled(password), user
    raise Unauthorized(f"unsupported authorization header scheme: {scheme}")


def _spelled(key: str) -> str:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        # Bytes that are not UTF-8 (aiohttp keeps them as surrogates): no key could be
        # spelled that way, and no tenant can be stored under it.
        shown = key.encode("utf-8", "replace").decode("utf-8")
        raise Unauthorized(f"no token {shown} found") from None
    return key


def _basic_user_pass(credentials: str) -> tuple[str, str]:
    """As the basic-auth package reads `Basic <base64 user:pass>`; ("", "") when it
    cannot (Studio then has no token: 401 `no authorization token provided`)."""
    if not re.fullmatch(r"[A-Za-z0-9._~+/-]+=*", credentials):
        return "", ""
    # Node's Buffer.from(…, "base64") skips what is not base64 and needs no padding.
    letters = re.sub(r"[^A-Za-z0-9+/_-]", "", credentials)
    try:
        padded = letters + "=" * (-len(letters) % 4)
        decoded = base64.b64decode(padded, altchars=b"-_").decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return "", ""
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else ("", "")


CORS_OPEN_PREFIXES = (
    "/api/asset/upload/direct",
    "/api/asset/upload/tus",
    "/api/playback/",
    "/asset/",
    "/hls/",
    "/ipfs/",  # the local IPFS gateway (routes/ipfs.py)
)
EXPOSED = (
    "Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Metadata, "
    "Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Link, X-Total-Count"
)


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Any origin on upload and playback paths, and for every key-less preflight (a
    browser sends no key on one: the real call is checked); on other API paths, the
    origins the caller's key allows (authentication sets CORS_ALLOWED)."""
    origin = request.headers.get("Origin")
    open_path = request.path.startswith(CORS_OPEN_PREFIXES)
    if (
        request.method == "OPTIONS"
        and origin
        and "Access-Control-Request-Method" in request.headers
    ):
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if origin and (open_path or request.method == "OPTIONS" or request.get(CORS_ALLOWED)):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = (
                "GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS"
            )
            asked = request.headers.get("Access-Control-Request-Headers")
            if asked:
                response.headers["Access-Control-Allow-Headers"] = asked
            response.headers["Access-Control-Max-Age"] = "86400"
    return response
