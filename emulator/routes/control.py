"""/_emulator/*: the control plane (health, reset, clock), the same in every deployment.

With keys configured, a key acts on its own tenant; only an admin key acts on all
(routes.common.control_scope).
"""

from __future__ import annotations

from aiohttp import web

from emulator import validation
from emulator.errors import BadRequest
from emulator.routes.common import (
    SCHEDULER,
    TENANCY,
    control_scope,
    json_response,
    optional_tenant,
    public,
    read_json,
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
    await request.app[TENANCY].reset(who)
    return json_response({"reset": "all" if who is None else "tenant"})


@public
async def get_clock(request: web.Request) -> web.Response:
    scheduler = request.app[SCHEDULER]
    now = scheduler.now_ms(optional_tenant(request))
    return json_response({"mode": scheduler.mode, "now": now})


@public
async def advance_clock(request: web.Request) -> web.Response:
    """Move manual time: the caller's tenant (bearer key), or everyone's without a key.
    {"seconds": N} moves it by N; {"next": true} exactly to the next due work, whatever
    it is, so a test can step from one transition to the next. The answer says when the
    next work is due (`nextDue`, ms on the caller's clock), if any."""
    body = await read_json(request, validation.CLOCK_ADVANCE)
    scheduler = request.app[SCHEDULER]
    who = control_scope(request, bool(body.get("all")), "moving every tenant's clock")
    if ("seconds" in body) == bool(body.get("next")):
        raise BadRequest('send {"seconds": N} to move time by N, or {"next": true}')
    if body.get("next"):
        moved = await scheduler.advance_to_next(who)
    else:
        moved = await scheduler.advance(round(float(body["seconds"]) * 1000), who)
    answer: dict[str, int] = {"now": moved.now, "applied": moved.applied}
    if moved.next_due is not None:
        answer["nextDue"] = moved.next_due
    return json_response(answer)
