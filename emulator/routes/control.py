"""/_emulator/*: the control plane (health, reset, clock), the same in every deployment."""

from __future__ import annotations

from aiohttp import web

from emulator import validation
from emulator.clock import ManualClock
from emulator.errors import BadRequest
from emulator.routes.common import json_response, optional_tenant, public, read_json, service


@public
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@public
async def reset(request: web.Request) -> web.Response:
    """Empty the caller's tenant (by bearer key), or everything with {"all": true}."""
    body = await read_json(request, validation.RESET)
    who = optional_tenant(request)
    if body.get("all"):
        who = None
    elif who is None:
        raise BadRequest('send a bearer key to reset its tenant, or {"all": true}')
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
    if not isinstance(svc.clock, ManualClock):
        raise BadRequest("the clock is real; start the server with --clock manual to move it")
    who = None if body.get("all") else optional_tenant(request)
    applied = await svc.advance(float(body["seconds"]), who)
    return json_response({"now": svc.clock.now_ms(who), "applied": applied})
