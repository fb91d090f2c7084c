"""API keys made through the control plane (emulator/api_keys.py): Studio's api-token
documents, each with the tenant it belongs to. Keys given on the command line are not
stored: they come from Settings at every start."""

from __future__ import annotations

import json
from dataclasses import dataclass

from emulator.models import Doc
from emulator.store.base import Tables, tenant_scope


@dataclass
class ApiKeyRow:
    tenant: str
    doc: Doc  # Studio's api-token document: id (the key), name, userId, access, ...


class ApiKeyTables(Tables):
    async def put_api_key(self, row: ApiKeyRow) -> None:
        await self._write(
            "INSERT INTO api_keys (id, tenant, created_at, doc) VALUES (?, ?, ?, ?)",
            (row.doc["id"], row.tenant, row.doc["createdAt"], json.dumps(row.doc)),
        )

    async def all_api_keys(self) -> list[ApiKeyRow]:
        """Every stored key, oldest first (they are few: the server keeps them in memory)."""
        sql = "SELECT tenant, doc FROM api_keys ORDER BY created_at, rowid"
        return [ApiKeyRow(r[0], json.loads(r[1])) for r in await self._rows(sql, ())]

    async def delete_api_key(self, key: str) -> None:
        await self._write("DELETE FROM api_keys WHERE id = ?", (key,))

    async def reset_api_keys(self, tenant: str | None) -> None:
        where, args = tenant_scope(tenant)
        await self._write(f"DELETE FROM api_keys {where}", args)
