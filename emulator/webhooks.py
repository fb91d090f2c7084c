"""Studio's webhook API (controllers/webhook.ts, webhook-log.ts): subscriptions per tenant,
their delivery logs and resends, plus the control plane's trigger and delivery listing.

Sending is emulator/delivery.py's job; this module owns the documents and the rules for
changing them.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from emulator.delivery import EMULATOR_LOG_KEYS, Deliveries
from emulator.errors import BadRequest, Forbidden, NotFound, UnprocessableEntity
from emulator.events import ALL_EVENTS, ASSET_EVENTS, TASK_EVENTS, make_events
from emulator.journal import LIST_CHARS as LIST_BODY_CHARS  # one excerpt size in lists
from emulator.models import Doc, new_id, tenant_project_id, tenant_user_id
from emulator.scheduler import Scheduler
from emulator.store import WEBHOOK_FIELDS, Changes, ListQuery, LogRow, Store, WebhookRow
from emulator.validation import Schema

_EVENT: Schema = {"type": "string", "enum": list(ALL_EVENTS)}
_URL: Schema = {"type": "string", "format": "uri", "pattern": "^http(s)?://"}
# Schema `webhook` (+ the db overlay's legacy `event`); read-only fields are accepted and
# ignored, as Ajv does with them.
WEBHOOK: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "url"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"type": "string"},
        "userId": {"type": "string"},
        "projectId": {"type": "string"},
        "createdAt": {"type": "number"},
        "events": {"type": "array", "items": _EVENT},
        "event": _EVENT,
        "url": _URL,
        "sharedSecret": {"type": "string"},
        "streamId": {"type": "string"},
        "status": {"type": "object"},
    },
}
WEBHOOK_PATCH: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "url": _URL,
        "events": {"type": "array", "items": _EVENT},
        "sharedSecret": {"type": "string"},
        "streamId": {"type": "string"},
    },
}
TRIGGER: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["event", "asset"],
    "properties": {
        "event": {"type": "string", "enum": [*ASSET_EVENTS, *TASK_EVENTS]},
        "asset": {"type": "string"},
    },
}
PATCHABLE = ("name", "events", "url", "sharedSecret", "streamId")
# The fields a webhook list may filter and sort on (what parse_list_query accepts).
WEBHOOK_LIST_FIELDS = tuple(WEBHOOK_FIELDS)


class Webhooks:
    def __init__(self, store: Store, clock: Scheduler, deliveries: Deliveries) -> None:
        self.store = store
        self.clock = clock
        self.deliveries = deliveries

    # -- subscriptions --------------------------------------------------------------------

    async def create(
        self, tenant: str, body: Doc, origin: str, *, webhook_id: str | None = None
    ) -> Doc:
        """A new webhook; `origin` is how its creator reaches us (URLs in snapshots).
        `webhook_id`: a seed file's stable id."""
        doc = _document(webhook_id or new_id(), tenant, self.clock.now_ms(tenant), body)
        # Studio leaves deliveries unsigned without a secret; the emulator always signs,
        # so a receiver's verification is exercised by default.
        doc.setdefault("sharedSecret", secrets.token_hex(16))
        await self.store.put_webhook(WebhookRow(tenant, doc, origin))
        return doc

    async def list_webhooks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self.store.list_webhooks(tenant, query)

    async def _owned(self, tenant: str, webhook_id: str, missing: str) -> WebhookRow:
        row = await self.store.get_webhook(webhook_id)
        if row is None or row.deleted or row.tenant != tenant:
            raise NotFound(missing)  # another tenant's webhook is not revealed
        return row

    async def get(self, tenant: str, webhook_id: str) -> Doc:
        return (await self._owned(tenant, webhook_id, "not found")).doc

    async def replace(self, tenant: str, webhook_id: str, body: Doc) -> Doc:
        row = await self._owned(tenant, webhook_id, "not found")
        old = row.doc
        row.doc = _document(old["id"], tenant, old["createdAt"], body)
        if "sharedSecret" in old:
            row.doc.setdefault("sharedSecret", old["sharedSecret"])
        await self.store.put_webhook(row)
        return {"id": webhook_id}

    async def update(self, tenant: str, webhook_id: str, patch: Doc) -> None:
        row = await self._owned(tenant, webhook_id, "webhook not found")
        if "url" in patch:
            _check_url(patch["url"])
        row.doc.update({k: patch[k] for k in PATCHABLE if k in patch})
        await self.store.put_webhook(row)

    async def delete(self, tenant: str, webhook_id: str) -> None:
        row = await self._owned(tenant, webhook_id, "not found")
        row.deleted = True
        await self.store.put_webhook(row)
        await self.store.drop_deliveries(webhook_id)

    # -- the delivery log -----------------------------------------------------------------

    async def logs(self, tenant: str, webhook_id: str, query: ListQuery) -> list[Doc]:
        # Studio lists by user and webhook id without looking the webhook up: a webhook
        # that is not yours simply has no log entries.
        rows = await self.store.webhook_log(
            tenant,
            webhook_id=webhook_id,
            newest_first=True,
            limit=query.limit,
            offset=query.offset,
        )
        return [studio_log(r.doc) for r in rows]

    async def _log_entry(
        self, tenant: str, webhook_id: str, log_id: str
    ) -> tuple[WebhookRow, LogRow]:
        """Studio's checks, in its order: webhook, log entry, owner, and that they match."""
        hook = await self.store.get_webhook(webhook_id)
        if hook is None or hook.deleted:
            raise NotFound("webhook not found")
        found = await self.store.webhook_log(None, log_id=log_id, limit=1)
        if not found:
            raise NotFound("webhook log not found")
        entry = found[0]
        if hook.tenant != tenant or entry.tenant != tenant:
            raise Forbidden("invalid user")
        if entry.doc["webhookId"] != webhook_id:
            raise BadRequest("mismatch between webhook and webhook log")
        return hook, entry

    async def log(self, tenant: str, webhook_id: str, log_id: str) -> Doc:
        _, entry = await self._log_entry(tenant, webhook_id, log_id)
        return studio_log(entry.doc)

    async def resend(self, tenant: str, webhook_id: str, log_id: str) -> Doc:
        """Send the logged request again, now, re-signed; the new attempt's log entry."""
        hook, entry = await self._log_entry(tenant, webhook_id, log_id)
        body = _json_object(entry.doc["request"]["body"])
        body["timestamp"] = self.clock.now_ms(tenant)
        sent = await self.deliveries.send(hook, body, resentFrom=log_id)
        return studio_log(sent.log)

    # -- control plane --------------------------------------------------------------------

    async def trigger(self, tenant: str, event: str, asset_id: str) -> Doc:
        """Emit one event about an asset (or its upload task) now, like `stripe trigger`,
        and wait for the first attempts to the subscribed webhooks."""
        row = await self.store.get_asset(asset_id)
        if row is None or row.tenant != tenant:
            raise NotFound("Asset not found")
        subject = row.doc
        if event.startswith("task."):
            tasks = await self.store.tasks_of_asset(asset_id)
            if not tasks:
                raise UnprocessableEntity(f"asset {asset_id} has no task")
            subject = tasks[0].doc
        events = make_events(tenant, self.clock.now_ms(tenant), [(event, subject)])
        await self.store.save(Changes(events=events))
        event_id = events[0].id
        await self.deliveries.run_due(tenant)
        attempts = await self.store.webhook_log(tenant, event_id=event_id)
        return {"id": event_id, "event": event, "deliveries": [r.doc for r in attempts]}

    async def delivery_log(
        self,
        tenant: str | None,
        *,
        event: str | None = None,
        asset_id: str | None = None,
        webhook_id: str | None = None,
        before: str | None = None,
        limit: int = 100,
        log_id: str | None = None,
    ) -> list[Doc]:
        """Attempts, most recent first, with the emulator's extra fields; `before` (a log
        id) pages on. Request and response bodies are cut to LIST_BODY_CHARS (marked
        `bodyTruncated`, with `bodyBytes`) unless one attempt is asked for by `log_id`."""
        rows = await self.store.webhook_log(
            tenant,
            log_id=log_id,
            event=event,
            asset_id=asset_id,
            webhook_id=webhook_id,
            recent_first=True,
            before=before,
            limit=limit,
        )
        if log_id is not None:
            return [r.doc for r in rows]

        def listed(doc: Doc) -> Doc:
            doc = dict(doc)
            for part in ("request", "response"):
                section = doc.get(part)
                if not isinstance(section, dict):
                    continue
                body = section.get("body")
                if isinstance(body, str) and len(body) > LIST_BODY_CHARS:
                    doc[part] = {
                        **section,
                        "body": body[:LIST_BODY_CHARS],
                        "bodyTruncated": True,
                        "bodyBytes": len(body.encode()),
                    }
            return doc

        docs = [listed(r.doc) for r in rows]
        # A failed attempt whose delivery is still pending says when it is tried again:
        # only the latest attempt (its number is the delivery's count), on the tenant's
        # clock, as the scheduler will try it.
        retries = await self.store.retries_due(
            tenant, sorted({d["eventId"] for d in docs if isinstance(d.get("eventId"), str)})
        )
        for doc in docs:
            pending = retries.get((str(doc.get("webhookId")), str(doc.get("eventId"))))
            if pending is not None and doc.get("attempt") == pending[0]:
                doc["nextAttemptAt"] = pending[1]
        return docs


def _document(webhook_id: str, tenant: str, created_at: int, body: Doc) -> Doc:
    """Studio's validateWebhookPayload: the stored document for a create or replace."""
    url = body["url"]
    _check_url(url)
    # JavaScript's `!payload.events`: an empty list is still a subscription list.
    if body.get("events") is None and body.get("event") is None:
        raise UnprocessableEntity('must provide "events" field with subscriptions')
    doc: Doc = {
        "id": webhook_id,
        "userId": tenant_user_id(tenant),
        "projectId": tenant_project_id(tenant),
        "createdAt": created_at,
        "kind": "webhook",
        "name": body["name"],
        "events": body["events"] if body.get("events") is not None else [body["event"]],
        "url": url,
        "sharedSecret": body.get("sharedSecret"),
        "streamId": body.get("streamId"),
    }
    return {k: v for k, v in doc.items() if v is not None}


def _check_url(url: str) -> None:
    """A URL that can be delivered to: it has a host, and parses (urlsplit raises for an
    unclosed IPv6 bracket or a port past 65535, which Node's URL refuses as well)."""
    try:
        parts = urlsplit(url)
        valid = bool(parts.hostname) and (parts.port or 0) <= 65535
        if valid and "[" in parts.netloc:
            # Python 3.10's urlsplit takes any text in brackets; 3.11+ require an IPv6 address.
            valid = isinstance(ipaddress.ip_address(parts.hostname or ""), ipaddress.IPv6Address)
    except ValueError:
        valid = False
    if not valid:
        raise UnprocessableEntity(f"bad url: {url}")


def studio_log(doc: Doc) -> Doc:
    """A log entry as Studio's log endpoints show it."""
    return {k: v for k, v in doc.items() if k not in EMULATOR_LOG_KEYS}


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
