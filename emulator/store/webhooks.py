"""Webhooks (emulator/webhooks.py, emulator/delivery.py): the subscriptions, the deliveries
still to attempt (due_ms NULL while a fault holds one back), and the log of attempts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from emulator.models import Doc, Event
from emulator.store.base import ListQuery, Tables, from_row, tenant_scope

# Studio's webhook.ts fieldsMap (less `user.email`: see ASSET_FIELDS). No updatedAt.
WEBHOOK_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "json_extract(doc, '$.name')",
    "url": "json_extract(doc, '$.url')",
    "blocking": "json_extract(doc, '$.blocking')",
    "deleted": "json_extract(doc, '$.deleted')",
    "createdAt": "created_at",
    "userId": "json_extract(doc, '$.userId')",
    "projectId": "json_extract(doc, '$.projectId')",
    "sharedSecret": "json_extract(doc, '$.sharedSecret')",
}


@dataclass
class WebhookRow:
    tenant: str
    doc: Doc
    origin: str  # where its creator reached us: the base of URLs in event snapshots
    deleted: bool = False


@dataclass
class DeliveryRow:
    """One event on its way to one webhook; kept until it succeeds or is given up."""

    tenant: str
    webhook_id: str
    event_id: str
    event: str
    created_at: int
    due_ms: int | None  # None: held back until a later delivery has gone
    payload: Doc
    attempts: int = 0
    fault: str | None = None  # "bad_signature" when a scenario rule asked for one
    seq: int | None = None


@dataclass
class LogRow:
    """One delivery attempt: Studio's webhook-log document plus what it was about."""

    tenant: str
    event_id: str
    asset_id: str | None
    doc: Doc


class WebhookTables(Tables):
    # -- subscriptions ------------------------------------------------------------------

    async def put_webhook(self, row: WebhookRow) -> None:
        d = row.doc
        await self._write(
            "INSERT INTO webhooks (id, tenant, created_at, deleted, origin, doc) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "deleted = excluded.deleted, doc = excluded.doc",
            (d["id"], row.tenant, d["createdAt"], int(row.deleted), row.origin, json.dumps(d)),
        )

    async def get_webhook(self, webhook_id: str) -> WebhookRow | None:
        rows = await self._webhook_rows("id = ?", (webhook_id,))
        return rows[0] if rows else None

    async def live_webhooks(self, tenant: str) -> list[WebhookRow]:
        return await self._webhook_rows("tenant = ? AND deleted = 0", (tenant,))

    async def list_webhooks(self, tenant: str, query: ListQuery) -> tuple[list[Doc], int | None]:
        return await self._list("webhooks", WEBHOOK_FIELDS, "deleted = 0 AND ", tenant, query)

    async def _webhook_rows(self, where: str, args: tuple[Any, ...]) -> list[WebhookRow]:
        sql = f"SELECT tenant, deleted, origin, doc FROM webhooks WHERE {where} ORDER BY rowid"
        rows = await self._rows(sql, args)
        return [WebhookRow(r[0], json.loads(r[3]), r[2], bool(r[1])) for r in rows]

    async def note_webhook_status(self, webhook_id: str, status: Doc) -> None:
        """Merge into the webhook's `status` in one statement, so a PATCH is not undone."""
        await self._write(
            "UPDATE webhooks SET doc = json_set(doc, '$.status', "
            "json_patch(coalesce(json_extract(doc, '$.status'), '{}'), ?)) WHERE id = ?",
            (json.dumps(status), webhook_id),
        )

    # -- deliveries ---------------------------------------------------------------------

    async def deliver_events(self, up_to_seq: int, rows: Sequence[DeliveryRow]) -> None:
        """The outbox's events up to `up_to_seq` become their deliveries, in one unit of
        work: a stop at any moment leaves them either all still in the outbox or all
        fanned out. (Units commit one at a time, so no event below `up_to_seq` can
        still be on its way in.)"""

        async def work(db: aiosqlite.Connection) -> None:
            await _insert_deliveries(db, rows)
            await db.execute("DELETE FROM outbox WHERE seq <= ?", (up_to_seq,))

        await self._transact(work)

    async def pending_events(self, limit: int = 100) -> list[Event]:
        """Events stored with the changes that raised them and not yet fanned out, oldest
        first."""
        sql = "SELECT seq, id, tenant, name, created_at, subject FROM outbox ORDER BY seq LIMIT ?"
        return [
            Event(r[1], r[2], r[3], r[4], json.loads(r[5]), seq=r[0])
            for r in await self._rows(sql, (limit,))
        ]

    async def delivery_due_times(self, tenant: str | None) -> list[tuple[str, str, int]]:
        """(tenant, webhook id, earliest due ms) of every webhook with a delivery pending."""
        where, args = tenant_scope(tenant, "AND")
        sql = (
            "SELECT tenant, webhook_id, MIN(due_ms) FROM webhook_deliveries "
            f"WHERE due_ms IS NOT NULL {where} GROUP BY tenant, webhook_id"
        )
        return [(r[0], r[1], int(r[2])) for r in await self._rows(sql, args)]

    async def retries_due(
        self, tenant: str | None, event_ids: Sequence[str]
    ) -> dict[tuple[str, str], tuple[int, int]]:
        """(webhook id, event id) → (attempts made, due ms) of the deliveries among
        `event_ids` that were attempted and wait for another try (a retry)."""
        if not event_ids:
            return {}
        where, args = tenant_scope(tenant, "AND")
        # One JSON parameter rather than one per id: a page holds up to 1,000 attempts.
        sql = (
            "SELECT webhook_id, event_id, attempts, due_ms FROM webhook_deliveries "
            "WHERE attempts > 0 AND due_ms IS NOT NULL "
            f"AND event_id IN (SELECT value FROM json_each(?)) {where}"
        )
        rows = await self._rows(sql, (json.dumps(list(event_ids)), *args))
        return {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}

    async def next_delivery(self, webhook_id: str) -> DeliveryRow | None:
        """The webhook's delivery to attempt next: earliest due, then oldest."""
        sql = (
            "SELECT seq, tenant, webhook_id, event_id, event, created_at, due_ms, attempts, "
            "fault, payload FROM webhook_deliveries WHERE webhook_id = ? AND due_ms IS NOT NULL "
            "ORDER BY due_ms, seq LIMIT 1"
        )
        r = await self._row(sql, (webhook_id,))
        return None if r is None else from_row(DeliveryRow, r, payload=json.loads)

    async def finish_attempt(
        self, seq: int, *, retry_at: int | None, attempts: int, release_at: int | None
    ) -> None:
        """After an attempt: reschedule it (retry_at) or drop it, and let deliveries held
        back behind it (a reorder fault) go at release_at."""

        async def work(db: aiosqlite.Connection) -> None:
            if release_at is not None:
                await db.execute(
                    "UPDATE webhook_deliveries SET due_ms = ? WHERE due_ms IS NULL AND seq < ? "
                    "AND webhook_id = (SELECT webhook_id FROM webhook_deliveries WHERE seq = ?)",
                    (release_at, seq, seq),
                )
            if retry_at is None:
                await db.execute("DELETE FROM webhook_deliveries WHERE seq = ?", (seq,))
            else:
                await db.execute(
                    "UPDATE webhook_deliveries SET due_ms = ?, attempts = ? WHERE seq = ?",
                    (retry_at, attempts, seq),
                )

        await self._transact(work)

    async def drop_deliveries(self, webhook_id: str) -> None:
        await self._write("DELETE FROM webhook_deliveries WHERE webhook_id = ?", (webhook_id,))

    # -- log ----------------------------------------------------------------------------

    async def add_webhook_log(self, row: LogRow, keep: int) -> None:
        """Record one attempt; only the newest `keep` attempts are kept."""
        values = (
            row.doc["id"],
            row.tenant,
            row.doc["webhookId"],
            row.event_id,
            row.doc["event"],
            row.asset_id,
            row.doc["createdAt"],
            json.dumps(row.doc),
        )

        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO webhook_log (id, tenant, webhook_id, event_id, event, asset_id, "
                "created_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            await db.execute(
                "DELETE FROM webhook_log WHERE seq <= (SELECT MAX(seq) FROM webhook_log) - ?",
                (keep,),
            )

        await self._transact(work)

    async def webhook_log(
        self,
        tenant: str | None,
        *,
        log_id: str | None = None,
        event_id: str | None = None,
        webhook_id: str | None = None,
        event: str | None = None,
        asset_id: str | None = None,
        newest_first: bool = False,
        recent_first: bool = False,
        before: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[LogRow]:
        """Log entries matching every given column. Order: insertion (seq); with
        `newest_first`, Studio's (createdAt, newest first); with `recent_first`, the most
        recently logged first. `before` (a log id) keeps entries logged before that one:
        a cursor that stays put while new attempts arrive, unlike an offset."""
        where, args = ["1 = 1"], []
        if before is not None:
            # An id no longer kept (trimmed, reset) leaves nothing older either: no rows.
            where.append("seq < (SELECT seq FROM webhook_log WHERE id = ?)")
            args.append(before)
        for column, value in (
            ("tenant", tenant),
            ("id", log_id),
            ("event_id", event_id),
            ("webhook_id", webhook_id),
            ("event", event),
            ("asset_id", asset_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        order = "created_at DESC, seq DESC" if newest_first else "seq"
        if recent_first:
            order = "seq DESC"
        sql = (
            f"SELECT tenant, event_id, asset_id, doc FROM webhook_log WHERE {' AND '.join(where)} "
            f"ORDER BY {order} LIMIT ? OFFSET ?"
        )
        rows = await self._rows(sql, (*args, limit, offset))
        return [LogRow(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def reset_webhooks(self, tenant: str | None) -> None:
        where, args = tenant_scope(tenant)

        async def work(db: aiosqlite.Connection) -> None:
            for table in ("webhooks", "webhook_deliveries", "webhook_log", "outbox"):
                await db.execute(f"DELETE FROM {table} {where}", args)

        await self._transact(work)


async def _insert_deliveries(db: aiosqlite.Connection, rows: Sequence[DeliveryRow]) -> None:
    await db.executemany(
        "INSERT INTO webhook_deliveries (tenant, webhook_id, event_id, event, created_at, "
        "due_ms, attempts, fault, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.tenant,
                r.webhook_id,
                r.event_id,
                r.event,
                r.created_at,
                r.due_ms,
                r.attempts,
                r.fault,
                json.dumps(r.payload),
            )
            for r in rows
        ],
    )
