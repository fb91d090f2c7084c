"""IPFS exports (emulator/exports.py): the planned steps of export tasks, and the files
each export pinned, by CID.

Export steps have their own table, beside processing's `steps`: they belong to another
kind of timed work (an export task on an asset that is already ready), and processing's
restart logic reads `steps` as "this asset's processing plan". A pinned file is the
asset's media file (`content` NULL) or an NFT metadata JSON (its bytes in `content`).
"""

from __future__ import annotations

import json
from typing import NamedTuple

import aiosqlite

from emulator.models import Step, StepKind
from emulator.store.assets import AssetRow, Changes, _write_changes
from emulator.store.base import Tables, from_row, tenant_scope


class PinnedFile(NamedTuple):
    """One file an export put on IPFS, for the local gateway."""

    cid: str
    tenant: str
    asset_id: str
    content: bytes | None = None  # None: the asset's media file


class PinnedFound(NamedTuple):
    """A pinned file of an asset that is not deleted: its bytes or the asset's media."""

    content: bytes | None
    asset: AssetRow


class ExportTables(Tables):
    async def save_export(
        self,
        changes: Changes,
        *,
        add_steps: list[Step] | None = None,
        delete_steps: list[int] | None = None,
        pinned: list[PinnedFile] | None = None,
    ) -> None:
        """One export transition whole: documents and events (as Store.save), plus the
        export's steps and the files it pinned."""

        async def work(db: aiosqlite.Connection) -> None:
            await _write_changes(db, changes)
            await db.executemany(
                "DELETE FROM export_steps WHERE seq = ?", [(s,) for s in delete_steps or []]
            )
            await db.executemany(
                "INSERT INTO export_steps (tenant, due_ms, asset_id, task_id, kind, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (s.tenant, s.due_ms, s.asset_id, s.task_id, s.kind.value, json.dumps(s.data))
                    for s in add_steps or []
                ],
            )
            await db.executemany(
                "INSERT OR IGNORE INTO ipfs_files (cid, tenant, asset_id, content) "
                "VALUES (?, ?, ?, ?)",
                [(p.cid, p.tenant, p.asset_id, p.content) for p in pinned or []],
            )

        await self._transact(work, assets=changes.asset_ids)

    async def export_steps(self, tenant: str | None = None) -> list[Step]:
        """Planned export steps in due order (all tenants, or one)."""
        where, args = tenant_scope(tenant)
        sql = (
            "SELECT seq, tenant, due_ms, asset_id, task_id, kind, data FROM export_steps "
            f"{where} ORDER BY due_ms, seq"
        )
        rows = await self._rows(sql, args)
        return [from_row(Step, r, kind=StepKind, data=json.loads) for r in rows]

    async def pinned_file(self, cid: str) -> PinnedFound | None:
        """A file pinned by an export of an asset that still exists (the oldest first)."""
        row = await self._row(
            "SELECT f.content, a.tenant, a.media_path, a.doc FROM ipfs_files f "
            "JOIN assets a ON a.id = f.asset_id WHERE f.cid = ? AND a.deleted = 0 "
            "ORDER BY a.created_at LIMIT 1",
            (cid,),
        )
        if row is None:
            return None
        asset = AssetRow(tenant=row[1], media_path=row[2], doc=json.loads(row[3]))
        return PinnedFound(content=row[0], asset=asset)

    async def assets_by_ipfs_cid(self, cid: str) -> list[AssetRow]:
        """Ready, undeleted assets whose exported video has this CID, oldest first (Studio's
        getByIpfsCid orders by createdAt; the caller picks whose)."""
        rows = await self._rows(
            "SELECT tenant, media_path, doc FROM assets WHERE deleted = 0 AND phase = 'ready' "
            "AND json_extract(doc, '$.storage.ipfs.cid') = ? ORDER BY created_at",
            (cid,),
        )
        return [AssetRow(tenant=r[0], media_path=r[1], doc=json.loads(r[2])) for r in rows]

    async def delete_export_steps(self, seqs: list[int]) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.executemany("DELETE FROM export_steps WHERE seq = ?", [(s,) for s in seqs])

        await self._transact(work)
