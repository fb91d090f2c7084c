"""HTTP fault injection: the one seam where a scenario's HTTP rules change a request.

The middleware sits inside authentication (so the tenant is known) and before every
handler. A rule can delay the request (in real time, even on the manual clock: see
clock.real_delay), answer it with any status, headers and body, or drop the connection at
once or after part of the upload body. A fired rule is named in request[INJECTED_FAULT]
so the request journal can tell injected answers from the emulator's own.

Processing and import faults are not applied here but in the service's plans.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web
from multidict import CIMultiDict

from emulator.blobs import CHUNK_SIZE
from emulator.clock import real_delay
from emulator.routes.common import INJECTED_FAULT, RULES, caller_tenant
from emulator.routes.dashboard import from_dashboard
from emulator.scenarios import Respond
from emulator.wire import dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The control plane stays reachable whatever a scenario says, or a test could not undo it.
EXEMPT_PREFIX = "/_emulator/"


@web.middleware
async def inject(request: web.Request, handler: Handler) -> web.StreamResponse:
    book = request.app[RULES]
    if (
        not book.may_fault_http
        or request.path.startswith(EXEMPT_PREFIX)
        # The dashboard's calls: its polling must not fail, nor count towards a rule's nth.
        or from_dashboard(request)
    ):
        return await handler(request)
    # Signed and tus uploads carry no API key; their tenant's scenario still applies.
    who = await caller_tenant(request)
    rules = book.http_faults(who, request.method, request.path)
    if not rules:
        return await handler(request)
    scenario = book.scenario_for(who)
    request[INJECTED_FAULT] = f"{scenario.name}: " + "; ".join(r.describe() for r in rules)
    for rule in rules:
        if rule.delay_ms:
            await real_delay(rule.delay_ms / 1000)
    last = rules[-1]
    if last.drop:
        return await _drop(request, last.drop_after_bytes or 0)
    if last.respond is not None:
        return respond(last.respond)
    return await handler(request)


def respond(spec: Respond) -> web.Response:
    """The rule's answer; without a body, Studio's error shape with the status's reason."""
    body = spec.body
    if body is None:
        try:
            reason = HTTPStatus(spec.status).phrase.lower()
        except ValueError:
            reason = "error"
        body = {"errors": [reason]}
    headers: CIMultiDict[str] = CIMultiDict(spec.headers)
    if isinstance(body, str):
        payload = body.encode()
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    else:
        payload = dumps(body).encode()
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
    return web.Response(body=payload, status=spec.status, headers=headers)


async def _drop(request: web.Request, after_bytes: int) -> web.StreamResponse:
    """Read `after_bytes` of the body (or all of a shorter one), then reset the connection.

    The handler never runs, so an interrupted upload leaves its asset as it was
    (`uploading`) and the client may try again, as with a real network cut.
    """
    remaining = after_bytes
    while remaining > 0:
        chunk = await request.content.read(min(remaining, CHUNK_SIZE))
        if not chunk:
            break
        remaining -= len(chunk)
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: the close sends a TCP RST, which clients report as a reset connection.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # Nobody will read this; it lets outer middlewares (the journal) finish normally.
    return web.Response(status=499)
