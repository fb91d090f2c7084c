"""/_emulator/tenants and /_emulator/scenarios: read-only lists for the dashboard.

They follow the control plane's key rules (routes.common.control_scope): a key sees only
its own tenant; every tenant (`?all=true`, or a key-less call while no key is configured)
needs an admin key once keys are configured. A tenant is named by its key, as the request
journal names it, so only a caller who may already read every tenant's journal sees
other tenants' names.
"""

from __future__ import annotations

from aiohttp import web

from emulator.models import tenant_user_id
from emulator.routes.common import (
    TENANCY,
    control_scope,
    everyone_asked,
    json_response,
    public,
)
from emulator.scenarios.loading import listing


@public
async def get_tenants(request: web.Request) -> web.Response:
    """The caller's tenant (always, with or without data), or with ?all=true every tenant
    that has assets or webhooks: `[{"tenant", "userId", "assets", "webhooks"}]`."""
    who = control_scope(request, everyone_asked(request), "listing every tenant")
    found = await request.app[TENANCY].tenants(who)
    return json_response(
        [
            {
                "tenant": entry.tenant,
                "userId": tenant_user_id(entry.tenant),
                "assets": entry.assets,
                "webhooks": entry.webhooks,
            }
            for entry in found
        ]
    )


@public
async def get_scenarios(request: web.Request) -> web.Response:
    """The shipped scenarios, `[{"name", "description"}]`, as `scenarios list` prints
    them: what `PUT /_emulator/scenario {"name"}` accepts."""
    return json_response(
        [{"name": name, "description": description} for name, description in listing()]
    )
