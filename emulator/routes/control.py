"""/_emulator/*: the control plane (health, reset, clock), the same in every deployment.

With keys configured, a key acts on its own tenant; only an admin key acts on all
(routes.common.control_scope).
"""

from __future__ import annotations

from aiohttp import web

from emulator import validation
from emulator.clock import ManualClock
from emulator.errors import BadRequest
from emulator.routes.common import (
    control_scope,
    json_response,
    optional_tenant,
    public,
    read_json,
    service,
)


@public
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@public
async def reset(request: web.Request) -> web.Response:
    """Empty the caller's tenant (by bearer key), or everything with {"all": true}."""
    body = await read_json(request, validation.RESET)
    if optional_tenant(request) is None and not body.get("all"):
        raise BadRequest('send a bearer key to reset its tenant, or {"all": true}')
    who = control_scope(request, bool(body.get("all")), "resetting every tenant")
    await service(request).reset(who)
    return json_response({"reset": "all" if who is None else "tenant"})


@public
async def get_clock(request: web.Request) -> web.Response:
    svc = service(request)
    mode = "manual" if svc.clock.manual else "real"
    return json_response({"mode": mode, "now": svc.clock.now_ms(optional_tenant(request))})


@public
async def advance_clock(request: web.Request) -> web.Response:
    """Move manual time: the caller's tenant (bearer key), or everyone's without a key."""
    body = await read_json(request, validation.CLOCK_ADVANCE)
    svc = service(request)
    who = control_scope(request, bool(body.get("all")), "moving every tenant's clock")
    if not isinstance(svc.clock, ManualClock):
        raise BadRequest("the clock is real; start the server with --clock manual to move it")
    applied = await svc.advance(float(body["seconds"]), who)
    return json_response({"now": svc.clock.now_ms(who), "applied": applied})
