"""tus resumable uploads (emulator/tus.py): one row per upload, kept so a restart leaves
every unfinished upload resumable at the offset it had reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.store.base import Tables, tenant_scope


@dataclass
class TusRow:
    """One tus upload: how far it got, and the asset (via its upload token) it feeds."""

    id: str  # "directUpload/<playbackId>", as Studio names it
    tenant: str
    asset_id: str
    token: str
    length: int | None  # None while the client defers it
    offset: int
    metadata: str | None  # the raw Upload-Metadata header, echoed back on HEAD
    created_at: int
    expires_at: int
    completed: bool = False


class TusTables(Tables):
    async def put_tus_upload(self, row: TusRow) -> None:
        """Create or replace an upload (a new creation POST for the same asset restarts it)."""
        await self._write(
            "INSERT OR REPLACE INTO tus_uploads (id, tenant, asset_id, token, length, "
            "upload_offset, metadata, created_at, expires_at, completed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                row.tenant,
                row.asset_id,
                row.token,
                row.length,
                row.offset,
                row.metadata,
                row.created_at,
                row.expires_at,
                1 if row.completed else 0,
            ),
        )

    async def update_tus_upload(self, row: TusRow) -> None:
        """Record what changed while bytes arrived: offset, a deferred length, completion."""
        await self._write(
            "UPDATE tus_uploads SET length = ?, upload_offset = ?, completed = ? WHERE id = ?",
            (row.length, row.offset, 1 if row.completed else 0, row.id),
        )

    async def get_tus_upload(self, upload_id: str) -> TusRow | None:
        rows = await self._tus_rows("WHERE id = ?", (upload_id,))
        return rows[0] if rows else None

    async def tus_uploads(self, tenant: str | None = None) -> list[TusRow]:
        """Every upload (or one tenant's), oldest expiry first."""
        return await self._tus_rows(*tenant_scope(tenant))

    async def delete_tus_upload(self, upload_id: str) -> None:
        await self._write("DELETE FROM tus_uploads WHERE id = ?", (upload_id,))

    async def _tus_rows(self, where: str, args: tuple[Any, ...]) -> list[TusRow]:
        sql = (
            "SELECT id, tenant, asset_id, token, length, upload_offset, metadata, created_at, "
            f"expires_at, completed FROM tus_uploads {where} ORDER BY expires_at, id"
        )
        # Not from_row: the column upload_offset (OFFSET is an SQL keyword) is the field offset.
        return [
            TusRow(
                id=r[0],
                tenant=r[1],
                asset_id=r[2],
                token=r[3],
                length=r[4],
                offset=r[5],
                metadata=r[6],
                created_at=r[7],
                expires_at=r[8],
                completed=bool(r[9]),
            )
            for r in await self._rows(sql, args)
        ]
