"""What every area of the store shares: its two connections, units of work, reading rows,
tenant scoping, and Studio's list queries (filters, order, paging) over any table kept
as documents.

Writes go through `_transact`: one unit of work at a time on the writer connection,
committed whole or rolled back whole. Coroutines used to share one connection with
interleaved statements, so one coroutine's commit could commit another's half-written
processing plan, and one's rollback could undo another's rows (issue 11). Reads use a
second connection: in WAL mode it sees only committed data, never a unit in progress.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import aiosqlite

from emulator.errors import STORAGE_FULL_MESSAGE, InsufficientStorage
from emulator.models import Doc
from emulator.reserve import DiskReserve

T = TypeVar("T")
SQLITE_FULL = 13  # sqlite3.SQLITE_FULL, which Python 3.10 lacks

log = logging.getLogger(__name__)

_OPERATORS = {
    "eq": "= ?",
    "gt": "> ?",
    "gte": ">= ?",
    "lt": "< ?",
    "lte": "<= ?",
    "like": "LIKE ? ESCAPE '\\'",  # case-insensitive substring, as Studio's name filter
}


class Filter(NamedTuple):
    field: str  # a key of ASSET_FIELDS / TASK_FIELDS / WEBHOOK_FIELDS
    op: str  # a key of _OPERATORS, or "all"/"none": a comparison every row passes/fails
    value: Any


@dataclass(frozen=True)
class ListQuery:
    limit: int = 20
    offset: int = 0  # a skip<N> cursor
    after: str | None = None  # any other cursor: ids after it (Studio's table.ts find)
    filters: Sequence[Filter] = ()
    order: Sequence[tuple[str, bool]] = (("updatedAt", True), ("createdAt", True))
    count: bool = False


class Stored(NamedTuple):
    """A document as the store keeps it: its id and its JSON text."""

    id: str
    text: str

    def doc(self) -> Doc:
        loaded: Doc = json.loads(self.text)
        return loaded


def tenant_scope(tenant: str | None, keyword: str = "WHERE") -> tuple[str, tuple[Any, ...]]:
    """The clause and arguments that limit a statement to one tenant (None: everyone)."""
    return (f"{keyword} tenant = ?", (tenant,)) if tenant is not None else ("", ())


def from_row(make: Callable[..., T], row: aiosqlite.Row, **convert: Callable[[Any], Any]) -> T:
    """make(...) called with the row's columns by name, so a SELECT's column order cannot
    slip against the fields; convert turns the columns stored in another form (JSON text,
    an enum's value) back."""
    values = dict(zip(row.keys(), row, strict=True))
    for name, back in convert.items():
        values[name] = back(values[name])
    return make(**values)


class Tables:
    """The base of each area's mixin; Store combines them over its two connections."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        reserve: DiskReserve | None = None,
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._reserve = reserve
        self._write_lock = asyncio.Lock()
        self._closed = False
        self._asset_watchers: list[Callable[[Iterable[str] | None], None]] = []

    def watch_assets(self, listener: Callable[[Iterable[str] | None], None]) -> None:
        """Call `listener` with the ids of the assets each unit of work wrote (None: any
        number of them), right after it commits: what a read cache needs to stay true."""
        self._asset_watchers.append(listener)

    def _assets_written(self, asset_ids: Iterable[str] | None) -> None:
        ids = None if asset_ids is None else tuple(asset_ids)
        if ids == ():
            return
        for listener in self._asset_watchers:
            listener(ids)

    async def close(self) -> None:
        """Close once the unit of work in progress (if any) has ended; later ones fail
        with StoreClosed."""
        async with self._write_lock:
            self._closed = True
            await self._writer.close()
            await self._reader.close()

    async def _transact(
        self,
        work: Callable[[aiosqlite.Connection], Awaitable[T]],
        *,
        assets: Iterable[str] | None = (),
    ) -> T:
        """Run `work` as one transaction that no other coroutine can join, commit or roll
        back. It runs to its end (commit or rollback) even if the caller is cancelled: a
        unit of work is never cut in half. `assets`: the ids of the assets it writes
        (None: possibly any), told to the asset watchers once it has committed, still
        inside the unit, so a cancelled caller cannot leave a read cache stale."""

        async def attempt() -> T:
            try:
                result = await work(self._writer)
                await self._writer.commit()
            except BaseException:
                await self._writer.rollback()
                raise
            self._assets_written(assets)
            return result

        async def unit() -> T:
            async with self._write_lock:
                if self._closed:
                    raise StoreClosed("the store is closed: the server is stopping")
                try:
                    return await attempt()
                except sqlite3.OperationalError as exc:
                    if not _disk_full(exc):
                        raise
                    # The disk is full: free the reserve kept for this and try once more,
                    # so that deletions (which free space) still commit.
                    if self._reserve is None or not self._reserve.release():
                        raise InsufficientStorage(STORAGE_FULL_MESSAGE) from exc
                try:
                    return await attempt()
                except sqlite3.OperationalError as exc:
                    if _disk_full(exc):
                        raise InsufficientStorage(STORAGE_FULL_MESSAGE) from exc
                    raise

        job = asyncio.ensure_future(unit())
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            job.add_done_callback(_log_orphaned_failure)  # nobody is left to raise to
            raise

    async def _write(self, sql: str, args: Iterable[Any] = ()) -> None:
        """One statement as its own unit of work."""

        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(sql, args)

        await self._transact(work)

    async def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        # Executed and read to the end in one call: a statement left open between awaits
        # (another coroutine's half-read cursor) would keep the reader's snapshot old, and
        # a write committed meanwhile would stay invisible to every later read.
        return list(await self._reader.execute_fetchall(sql, args))

    async def _row(self, sql: str, args: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self._rows(sql, args)
        return rows[0] if rows else None

    async def _list(
        self, table: str, fields: dict[str, str], base: str, tenant: str, query: ListQuery
    ) -> tuple[list[Doc], int | None]:
        listed, total = await self._list_stored(table, fields, base, tenant, query)
        return [item.doc() for item in listed], total

    async def _list_stored(
        self, table: str, fields: dict[str, str], base: str, tenant: str, query: ListQuery
    ) -> tuple[list[Stored], int | None]:
        """A page of documents as stored (JSON text), for callers that may not need to
        decode them all (a read cache)."""
        where = [f"{base}tenant = ?"]
        args: list[Any] = [tenant]
        for f in query.filters:
            if f.op in ("all", "none"):
                where.append("1" if f.op == "all" else "0")
                continue
            where.append(f"{fields[f.field]} {_OPERATORS[f.op]}")
            args.append(f.value)
        if query.after is not None:
            where.append(f"{fields['id']} > ?")
            args.append(query.after)
        clause = " AND ".join(where)
        # NULLS LAST as Studio's parseOrder writes it (its timestamps are never null).
        # rowid last: ties (same-millisecond writes) still page deterministically.
        order = ", ".join(
            [f"{fields[name]} {'DESC' if desc else 'ASC'} NULLS LAST" for name, desc in query.order]
            + ["rowid DESC"]
        )
        sql = f"SELECT id, doc FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?"
        rows = await self._rows(sql, (*args, query.limit, query.offset))
        listed = [Stored(r[0], r[1]) for r in rows]
        total = None
        # Studio counts with `count(*) OVER()` on the rows it returns: none, no count.
        if query.count and listed:
            row = await self._row(f"SELECT COUNT(*) FROM {table} WHERE {clause}", args)
            total = int(row[0]) if row else 0
        return listed, total


def _disk_full(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; the message on 3.10
    return code == SQLITE_FULL or "database or disk is full" in str(exc)


class StoreClosed(Exception):
    """A unit of work arrived after the store was closed."""


def _log_orphaned_failure(job: asyncio.Future[Any]) -> None:
    if not job.cancelled() and not isinstance(job.exception(), (StoreClosed, type(None))):
        log.error("a unit of work failed after its caller went away", exc_info=job.exception())


async def rows_of(
    db: aiosqlite.Connection, sql: str, args: Iterable[Any] = ()
) -> list[aiosqlite.Row]:
    """Rows read inside a unit of work (on the writer, so the unit sees its own writes)."""
    return list(await db.execute_fetchall(sql, args))
