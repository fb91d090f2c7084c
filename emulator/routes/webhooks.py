"""/api/webhook: createWebhook, getWebhooks, getWebhook, updateWebhook (PUT), PATCH,
deleteWebhook, getWebhookLogs, getWebhookLog, resendWebhook; and the control plane's
/_emulator/webhooks/{deliveries,trigger}."""

from __future__ import annotations

from aiohttp import web

from emulator import webhooks as model
from emulator.errors import NotFound
from emulator.routes.common import (
    control_page,
    control_scope,
    entry_scope,
    everyone_asked,
    json_response,
    next_page,
    origin,
    paged,
    public,
    read_json,
    tenant,
)
from emulator.webhooks import WEBHOOK_LIST_FIELDS, Webhooks
from emulator.wire import parse_list_query

WEBHOOKS = web.AppKey("webhooks", Webhooks)


def _webhooks(request: web.Request) -> Webhooks:
    return request.app[WEBHOOKS]


def _id(request: web.Request) -> str:
    return request.match_info["id"]


async def create_webhook(request: web.Request) -> web.Response:
    body = await read_json(request, model.WEBHOOK)
    doc = await _webhooks(request).create(tenant(request), body, origin(request))
    # Studio answers 201 (its schema, and so Python SDK 0.3.0, expect 200; see README).
    return json_response(doc, status=201)


async def get_webhooks(request: web.Request) -> web.Response:
    query = parse_list_query(request.rel_url.raw_query_string, WEBHOOK_LIST_FIELDS, (), "")
    docs, total = await _webhooks(request).list_webhooks(tenant(request), query)
    return paged(request, docs, query.limit, query.offset, total)


async def get_webhook(request: web.Request) -> web.Response:
    return json_response(await _webhooks(request).get(tenant(request), _id(request)))


async def update_webhook(request: web.Request) -> web.Response:
    """PUT, Studio's updateWebhook: the whole webhook is replaced."""
    body = await read_json(request, model.WEBHOOK)
    return json_response(await _webhooks(request).replace(tenant(request), _id(request), body))


async def patch_webhook(request: web.Request) -> web.Response:
    """PATCH: not in Studio's schema (no operationId), but its server has it."""
    patch = await read_json(request, model.WEBHOOK_PATCH)
    await _webhooks(request).update(tenant(request), _id(request), patch)
    return web.Response(status=204)


async def delete_webhook(request: web.Request) -> web.Response:
    await _webhooks(request).delete(tenant(request), _id(request))
    return web.Response(status=204)


async def get_webhook_logs(request: web.Request) -> web.Response:
    query = parse_list_query(request.query, {}, ())
    docs = await _webhooks(request).logs(tenant(request), _id(request), query)
    return paged(request, docs, query.limit, query.offset, None)


async def get_webhook_log(request: web.Request) -> web.Response:
    log_id = request.match_info["logId"]
    return json_response(await _webhooks(request).log(tenant(request), _id(request), log_id))


async def resend_webhook(request: web.Request) -> web.Response:
    log_id = request.match_info["logId"]
    return json_response(await _webhooks(request).resend(tenant(request), _id(request), log_id))


@public
async def get_deliveries(request: web.Request) -> web.Response:
    """Delivery attempts, most recent first: the caller's tenant, or every tenant's with
    ?all=true (an admin key; or no key when no keys are configured). Filters: ?event=,
    ?asset=<asset id>, ?webhook=<webhook id>; pages: ?limit= (100, at most 1000) and
    ?before=<attempt id>, as the `Link: rel="next"` header gives. Bodies are cut to 1 KiB;
    GET /_emulator/webhooks/deliveries/{id} has them whole."""
    q = request.query
    limit = control_page(request)
    who = control_scope(request, everyone_asked(request), "reading every tenant's deliveries")
    docs = await _webhooks(request).delivery_log(
        who,
        event=q.get("event") or None,
        asset_id=q.get("asset") or None,
        webhook_id=q.get("webhook") or None,
        before=q.get("before") or None,
        limit=limit,
    )
    headers = next_page(request, docs, limit, docs[-1]["id"]) if docs else {}
    return json_response(docs, headers=headers)


@public
async def get_delivery(request: web.Request) -> web.Response:
    """One attempt with its whole request and response: the caller's, or any for an
    admin key (or without a key when no keys are configured)."""
    docs = await _webhooks(request).delivery_log(
        entry_scope(request), log_id=request.match_info["id"], limit=1
    )
    if not docs:
        raise NotFound("delivery not found")
    return json_response(docs[0])


async def trigger(request: web.Request) -> web.Response:
    """Send one event about an asset to the caller's subscribed webhooks, now (needs the
    asset's API key)."""
    body = await read_json(request, model.TRIGGER)
    result = await _webhooks(request).trigger(tenant(request), body["event"], body["asset"])
    return json_response(result)
