"""Webhook delivery: events fanned out to subscribed webhooks, signed POSTs, retries on the
emulator's clock, the attempt log, and the delivery faults a scenario asks for.

Use cases store events in the outbox, in the same transaction as the change that raised
them, and only then say so (EventSink.notify), so a stop at any moment loses no event. An
intake task turns each stored event into one stored delivery per subscribed webhook (and
removes it from the outbox, in one transaction), and one worker per webhook sends them in
order, so a slow or dead receiver only ever holds up its own deliveries. Retries are
stored with a due time on the emulator's clock and run by the scheduler (this is its
"webhook deliveries" TimedWork: run_due/due_times), so with the manual clock a test sees
attempts at +0, +5 s, +15 s without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import aiohttp

from emulator.clock import monotonic, real_delay
from emulator.errors import InsufficientStorage
from emulator.models import Doc, Event, WebhookFault, new_id
from emulator.scheduler import Scheduler
from emulator.store import DeliveryRow, LogRow, Store, WebhookRow
from emulator.wire import asset_out, task_out

log = logging.getLogger(__name__)

USER_AGENT = "livepeer.studio"
# Studio gives a receiver 30 s. With the manual clock a test waits on each advance that
# sends deliveries, so there the scheduler cuts it (Scheduler.patience: 2 s), and one
# advance waits at most 5 s in all for attempts; what is still in flight then finishes in
# the background, and its retry is due on the clock as usual. A receiver that never
# answered used to hold a 20 s advance for 3 x 30 s.
TIMEOUT_SECONDS = 30.0
FIRST_BACKOFF_MS = 5_000  # then doubling ...
MAX_BACKOFF_MS = 3_600_000  # ... up to an hour
MAX_RETRIES = 33
LOG_LIMIT = 10_000  # attempts kept in the log, all tenants together
RESPONSE_BODY_LIMIT = 1024  # bytes of a receiver's answer kept in the log
# Kept in the log for GET /_emulator/webhooks/deliveries; Studio's log endpoints hide them.
EMULATOR_LOG_KEYS = ("eventId", "assetId", "attempt", "error", "fault", "resentFrom")


def backoff_ms(retry: int) -> int:
    """How long Studio waits before retry number `retry` (1-based)."""
    return int(min(FIRST_BACKOFF_MS * 2 ** (retry - 1), MAX_BACKOFF_MS))


def sign(body: bytes, secret: str) -> str:
    """Studio's signature: HMAC-SHA256 of the raw body, keyed by the shared secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def event_body(
    event_id: str,
    webhook_id: str | None,
    created_at: int,
    timestamp: int,
    event: str,
    payload: Doc,
) -> Doc:
    """Studio's delivery body, in its key order. `timestamp` is the attempt's time (the
    signature's `t=`); without a webhook (an event stream) `webhookId` is left out."""
    body: Doc = {"id": event_id, "webhookId": webhook_id}
    if webhook_id is None:
        del body["webhookId"]
    body.update(createdAt=created_at, timestamp=timestamp, event=event, payload=payload)
    return body


def signed(
    body: Doc, secret: str | None, *, bad_signature: bool = False
) -> tuple[bytes, dict[str, str]]:
    """The raw bytes and headers of one delivery of `body`: signed with `secret`
    (`Livepeer-Signature: t=<timestamp>,v1=<hex HMAC>`) when there is one, with a random
    key instead for a scenario's bad_signature. `livepeer-emulator listen` signs its
    forwards here too."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    if secret:
        key = secrets.token_hex(16) if bad_signature else secret
        headers["Livepeer-Signature"] = f"t={body['timestamp']},v1={sign(raw, key)}"
    return raw, headers


# Which faults apply to one delivery: (tenant, event name, webhook URL) → the scenario's
# `webhook:` rules that fire for it (Rulebook.webhook_faults).
FaultSource = Callable[[str, str, str], Sequence[WebhookFault]]


def no_faults(tenant: str, event: str, url: str) -> Sequence[WebhookFault]:
    return ()


def payload_of(event: str, subject: Doc, origin: str) -> Doc:
    """Studio's payload: {asset: {id, snapshot}} or {task: {id, type, snapshot}, success?}."""
    if event.startswith("asset."):
        snapshot = asset_out(subject, origin, details=True)  # webhooks keep videoSpec.tracks
        return {"asset": {"id": subject["id"], "snapshot": snapshot}}
    snapshot = task_out(subject, origin)
    payload: Doc = {"task": {"id": subject["id"], "type": subject["type"], "snapshot": snapshot}}
    if event in ("task.completed", "task.failed"):
        payload["success"] = event == "task.completed"
    return payload


def asset_of(payload: Doc) -> str | None:
    """The asset a payload is about, for filtering the delivery log."""
    if "asset" in payload:
        return str(payload["asset"]["id"])
    task = payload.get("task", {}).get("snapshot", {})
    found = task.get("outputAssetId") or task.get("inputAssetId")
    return str(found) if found else None


class Sent(NamedTuple):
    """What one POST to a receiver produced."""

    log: Doc  # Studio's webhook-log document (plus EMULATOR_LOG_KEYS)
    status: int | None  # None: no HTTP answer (connection error or timeout)


class Deliveries:
    """The EventSink that delivers to webhooks; also the scheduler's "webhook
    deliveries" TimedWork (retries and delayed deliveries wait for their time there)."""

    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        *,
        faults: FaultSource = no_faults,
        fanned_out: Callable[[Sequence[Event]], None] = lambda events: None,
    ) -> None:
        self.store = store
        self._scheduler = scheduler  # each tenant's time, and a wake-up for retries
        self.faults = faults  # the scenario's webhook rules (emulator/rulebook.py)
        # Told of each batch of events once it has left the outbox (committed): the live
        # event streams (emulator/live_events.py) take them from here.
        self._fanned_out = fanned_out
        self.timeout = scheduler.patience(TIMEOUT_SECONDS)
        self._outbox_wake = asyncio.Event()  # events were stored: fan them out
        self._outbox_lock = asyncio.Lock()  # one fan-out pass at a time, in outbox order
        self._workers: dict[str, tuple[str, asyncio.Task[None]]] = {}  # webhook → (tenant, job)
        self._dirty: set[str] = set()  # webhooks with something new to look at
        self._jobs: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        self._jobs.append(asyncio.create_task(self._intake(), name="webhook intake"))
        self._outbox_wake.set()  # events a previous run stored but did not fan out
        # Deliveries left due by a previous run go out when the scheduler starts.

    async def stop(self) -> None:
        jobs = self._jobs + [job for _, job in self._workers.values()]
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(BaseException):
                await job
        if self._session is not None:
            await self._session.close()

    async def reset(self, tenant: str | None) -> None:
        for webhook_id, (owner, job) in list(self._workers.items()):
            if tenant in (None, owner):
                job.cancel()
                self._workers.pop(webhook_id, None)
        await self.store.reset_webhooks(tenant)

    # -- the event sink -----------------------------------------------------------------

    def notify(self) -> None:
        self._outbox_wake.set()

    async def _intake(self) -> None:
        while True:
            await self._outbox_wake.wait()
            self._outbox_wake.clear()
            try:
                await self._drain_outbox()
            except InsufficientStorage:  # expected on a full disk: try again shortly
                log.warning("webhook outbox: the data dir's disk is full; retrying")
                await real_delay(1.0)
                self._outbox_wake.set()
            except Exception:  # keep the intake alive (and not spinning); the log has it
                log.exception("reading the webhook outbox failed")
                await real_delay(1.0)
                self._outbox_wake.set()

    async def _drain_outbox(self) -> None:
        """Fan out every stored event, oldest first: a batch of events becomes its
        deliveries and leaves the outbox in one transaction."""
        async with self._outbox_lock:
            while events := await self.store.pending_events():
                hooks_of: dict[str, list[WebhookRow]] = {}
                rows: list[DeliveryRow] = []
                kicks: dict[str, str] = {}  # webhook id → tenant
                for event in events:
                    if event.tenant not in hooks_of:
                        hooks_of[event.tenant] = await self.store.live_webhooks(event.tenant)
                    for hook in hooks_of[event.tenant]:
                        if event.name in _events_of(hook):
                            rows += self._planned(event, hook)
                            kicks[hook.doc["id"]] = event.tenant
                last = events[-1].seq
                assert last is not None
                await self.store.deliver_events(last, rows)
                self._fanned_out(events)
                for webhook_id, tenant in kicks.items():
                    self._kick(webhook_id, tenant)

    def _planned(self, event: Event, hook: WebhookRow) -> list[DeliveryRow]:
        """The deliveries of one event to one webhook, shaped by matching fault rules."""
        rules = self.faults(event.tenant, event.name, hook.doc["url"])
        actions = {f.action for f in rules}
        if "drop" in actions:
            log.info("scenario drops %s to %s", event.name, hook.doc["url"])
            return []
        due = self._scheduler.now_ms(event.tenant) + sum(f.delay_ms for f in rules)
        row = DeliveryRow(
            tenant=event.tenant,
            webhook_id=hook.doc["id"],
            event_id=event.id,
            event=event.name,
            created_at=event.created_at,
            due_ms=None if "reorder" in actions else due,
            payload=payload_of(event.name, event.subject, hook.origin),
            fault="bad_signature" if "bad_signature" in actions else None,
        )
        return [row, dataclasses.replace(row)] if "duplicate" in actions else [row]

    # -- running deliveries -------------------------------------------------------------

    async def settle(self, tenant: str | None) -> None:
        """Events already stored get their deliveries (the scheduler's TimedWork)."""
        await self._drain_outbox()

    async def run_due(self, tenant: str | None = None, deadline: float | None = None) -> int:
        """Attempt everything due now (the tenant's, or everyone's) and wait for it, or
        only until `deadline` (a monotonic() time) if one is given. Counts nothing:
        `applied` in a clock advance counts processing steps."""
        await self._drain_outbox()  # every event stored so far has its deliveries stored
        for owner, webhook_id, due in await self.store.delivery_due_times(tenant):
            if due <= self._scheduler.now_ms(owner):
                self._kick(webhook_id, owner)
        busy = [
            job
            for owner, job in self._workers.values()
            if tenant in (None, owner) and not job.done()
        ]
        if busy:
            wait = None if deadline is None else deadline - monotonic()
            if wait is None or wait > 0:
                await asyncio.wait(busy, timeout=wait)
        return 0

    async def due_times(self, tenant: str | None = None) -> list[tuple[str, int]]:
        """(tenant, due ms) of deliveries waiting for a later time, for the scheduler.

        Deliveries already due are left out: run_due sends them, and a time that never
        moves past them would stall the scheduler's walk.
        """
        return [
            (owner, due)
            for owner, _, due in await self.store.delivery_due_times(tenant)
            if due > self._scheduler.now_ms(owner)
        ]

    def _kick(self, webhook_id: str, tenant: str) -> None:
        self._dirty.add(webhook_id)
        current = self._workers.get(webhook_id)
        if current is None or current[1].done():
            job = asyncio.create_task(self._work(webhook_id), name=f"webhook {webhook_id}")
            self._workers[webhook_id] = (tenant, job)

    async def _work(self, webhook_id: str) -> None:
        """Send the webhook's due deliveries one at a time, in order."""
        try:
            while webhook_id in self._dirty:
                self._dirty.discard(webhook_id)
                while True:
                    row = await self.store.next_delivery(webhook_id)
                    if row is None or (row.due_ms or 0) > self._scheduler.now_ms(row.tenant):
                        break
                    hook = await self.store.get_webhook(webhook_id)
                    if hook is None or hook.deleted:
                        await self.store.drop_deliveries(webhook_id)
                        break
                    await self._attempt(hook, row)
        except InsufficientStorage:  # the attempt is retried when it is next due
            log.warning("delivering to webhook %s: the data dir's disk is full", webhook_id)
        except Exception:
            log.exception("delivering to webhook %s failed", webhook_id)
        self._scheduler.wake()  # a retry may now be due at a new time

    async def _attempt(self, hook: WebhookRow, row: DeliveryRow) -> None:
        now = self._scheduler.now_ms(row.tenant)
        body = event_body(row.event_id, hook.doc["id"], row.created_at, now, row.event, row.payload)
        attempts = row.attempts + 1
        extra: Doc = {"attempt": attempts}
        if row.fault:
            extra["fault"] = row.fault
        sent = await self.send(hook, body, bad_signature=row.fault == "bad_signature", **extra)
        retriable = sent.status is None or sent.status >= 500  # 4xx: the receiver said no
        retry_at = now + backoff_ms(attempts) if retriable and attempts <= MAX_RETRIES else None
        assert row.seq is not None
        await self.store.finish_attempt(
            row.seq, retry_at=retry_at, attempts=attempts, release_at=now
        )

    async def send(
        self, hook: WebhookRow, body: Doc, *, bad_signature: bool = False, **extra: Any
    ) -> Sent:
        """POST one event body to the webhook, log the attempt, and say how it went."""
        raw, headers = signed(body, hook.doc.get("sharedSecret"), bad_signature=bad_signature)
        url = hook.doc["url"]
        status: int | None = None
        response: Doc | None = None
        error: str | None = None
        started = monotonic()
        assert self._session is not None, "deliveries not started"
        try:
            async with self._session.post(
                url,
                data=raw,
                headers=headers,
                allow_redirects=True,  # as node-fetch does for Studio
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as resp:
                status = resp.status
                text = (await resp.content.read(RESPONSE_BODY_LIMIT)).decode("utf-8", "replace")
                response = {"status": status, "statusText": resp.reason or "", "body": text}
        except asyncio.TimeoutError:
            error = f"timed out after {self.timeout:g} s"
        except (aiohttp.ClientError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        entry: Doc = {
            "id": new_id(),
            "webhookId": hook.doc["id"],
            "event": body["event"],
            "createdAt": body["timestamp"],
            "duration": round(monotonic() - started, 6),
            "success": status is not None and 200 <= status < 300,
            "request": {"url": url, "method": "POST", "headers": headers, "body": raw.decode()},
        }
        if response is not None:
            entry["response"] = response
        asset_id = asset_of(body.get("payload") or {})
        entry.update(eventId=body["id"], assetId=asset_id, **extra)
        if error is not None:
            entry["error"] = error
        entry = {k: v for k, v in entry.items() if v is not None}
        await self.store.add_webhook_log(
            LogRow(hook.tenant, body["id"], asset_id, entry), keep=LOG_LIMIT
        )
        # Studio's webhook `status`: when it last fired, and its last failure.
        note: Doc = {"lastTriggeredAt": body["timestamp"]}
        if not entry["success"]:
            failure = {
                "timestamp": body["timestamp"],
                "error": error or f"receiver answered {status}",
                "statusCode": status,
                "response": (response or {}).get("body"),
            }
            note["lastFailure"] = {k: v for k, v in failure.items() if v is not None}
        await self.store.note_webhook_status(hook.doc["id"], note)
        return Sent(entry, status)


def _events_of(hook: WebhookRow) -> list[str]:
    events = hook.doc.get("events")
    return events if isinstance(events, list) else []
