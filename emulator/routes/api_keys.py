"""API keys: Studio's /api/api-token (closed to API keys, as in Studio) and the control
plane's /_emulator/api-keys, where tests and dev setups make keys, CORS-enabled or not.

Control-plane rules as everywhere in /_emulator/*: a key acts on its own tenant; making,
reading or deleting another tenant's keys needs an admin key once keys are configured.
"""

from __future__ import annotations

from aiohttp import web

from emulator.api_keys import NEW_API_KEY, ApiKeys
from emulator.errors import Forbidden
from emulator.routes.common import (
    control_scope,
    entry_scope,
    everyone_asked,
    json_response,
    no_api_keys,
    optional_tenant,
    public,
    read_json,
)

API_KEYS = web.AppKey("api_keys", ApiKeys)


@no_api_keys
async def api_token(request: web.Request) -> web.Response:
    """Every /api/api-token route: Studio makes keys from its dashboard (a user's JWT),
    never with an API key, and the emulator has no dashboard. Authentication already
    answers this for any key; this is the same answer should a route reach here."""
    raise Forbidden("access forbidden for API keys")


@public
async def create_api_key(request: web.Request) -> web.Response:
    """{"name", "tenantKey", "access": {"cors": {"allowedOrigins", "fullAccess"}}} →
    201 with Studio's api-token document, whose `id` is the new key."""
    body = await read_json(request, NEW_API_KEY)
    keys = request.app[API_KEYS]
    caller = optional_tenant(request)
    tenant, doc = keys.new_key(caller, body)
    if tenant != caller:
        control_scope(request, True, "making a key in another key's tenant")
    await keys.save(tenant, doc)
    return json_response(doc, 201)


@public
async def get_api_keys(request: web.Request) -> web.Response:
    """The keys made here (not --api-key ones): the caller's tenant's, `?all=true`
    everyone's (admin key, or no key while none is configured)."""
    who = control_scope(request, everyone_asked(request), "listing every tenant's keys")
    return json_response(request.app[API_KEYS].list_keys(who))


@public
async def get_api_key(request: web.Request) -> web.Response:
    return json_response(request.app[API_KEYS].get(request.match_info["id"], entry_scope(request)))


@public
async def delete_api_key(request: web.Request) -> web.Response:
    await request.app[API_KEYS].delete(request.match_info["id"], entry_scope(request))
    return web.Response(status=204)
