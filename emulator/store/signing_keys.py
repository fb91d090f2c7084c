"""Signing keys (emulator/signing_keys.py): the public halves of tenants' ES256 key pairs,
which playback JWTs name in their `pub` claim. Private keys are never stored: Studio
hands them out once, on creation, and keeps only the public key."""

from __future__ import annotations

import json
from dataclasses import dataclass

from emulator.models import Doc
from emulator.store.base import ListQuery, Tables, tenant_scope

# Studio's signing-key.ts fieldsMap (id, name, deleted, createdAt, projectId, userId).
SIGNING_KEY_FIELDS: dict[str, str] = {
    "id": "id",
    "name": "json_extract(doc, '$.name')",
    "deleted": "json_extract(doc, '$.deleted')",
    "createdAt": "created_at",
    "projectId": "json_extract(doc, '$.projectId')",
    "userId": "json_extract(doc, '$.userId')",
}


@dataclass
class SigningKeyRow:
    tenant: str
    doc: Doc  # Studio's signing-key document: id, name, userId, createdAt, publicKey, ...

    @property
    def deleted(self) -> bool:
        return bool(self.doc.get("deleted"))


class SigningKeyTables(Tables):
    async def put_signing_key(self, row: SigningKeyRow) -> None:
        d = row.doc
        await self._write(
            "INSERT INTO signing_keys (id, tenant, public_key, created_at, deleted, doc) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "deleted = excluded.deleted, doc = excluded.doc",
            (
                d["id"],
                row.tenant,
                d["publicKey"],
                d["createdAt"],
                int(row.deleted),
                json.dumps(d),
            ),
        )

    async def get_signing_key(self, key_id: str) -> SigningKeyRow | None:
        rows = await self._key_rows("id = ?", (key_id,))
        return rows[0] if rows else None

    async def signing_keys_by_public_key(self, public_key: str) -> list[SigningKeyRow]:
        """Every key (any tenant's, deleted ones too) with this public key, as Studio's
        gate looks it up (`limit: 2`: more than one is its own error)."""
        return await self._key_rows("public_key = ?", (public_key,), limit=2)

    async def count_live_signing_keys(self, tenant: str) -> int:
        row = await self._row(
            "SELECT COUNT(*) FROM signing_keys WHERE tenant = ? AND deleted = 0", (tenant,)
        )
        return int(row[0]) if row else 0

    async def list_signing_keys(
        self, tenant: str, query: ListQuery
    ) -> tuple[list[Doc], int | None]:
        return await self._list(
            "signing_keys", SIGNING_KEY_FIELDS, "deleted = 0 AND ", tenant, query
        )

    async def note_signing_key_seen(self, key_id: str, seen_ms: int, older_than_ms: int) -> None:
        """Set `lastSeen`, unless it was set after `older_than_ms` (one write per key now
        and then, not one per media request)."""
        await self._write(
            "UPDATE signing_keys SET doc = json_set(doc, '$.lastSeen', ?) WHERE id = ? "
            "AND coalesce(json_extract(doc, '$.lastSeen'), 0) < ?",
            (seen_ms, key_id, older_than_ms),
        )

    async def reset_signing_keys(self, tenant: str | None) -> None:
        where, args = tenant_scope(tenant)
        await self._write(f"DELETE FROM signing_keys {where}", args)

    async def _key_rows(
        self, where: str, args: tuple[str, ...], limit: int = -1
    ) -> list[SigningKeyRow]:
        sql = f"SELECT tenant, doc FROM signing_keys WHERE {where} ORDER BY rowid LIMIT ?"
        return [
            SigningKeyRow(r[0], json.loads(r[1])) for r in await self._rows(sql, (*args, limit))
        ]
