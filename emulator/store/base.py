"""What every area of the store shares: the one connection, reading rows, tenant scoping,
and Studio's list queries (filters, order, paging) over any table kept as documents."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosqlite

from emulator.models import Doc

T = TypeVar("T")

_OPERATORS = {
    "eq": "= ?",
    "gt": "> ?",
    "gte": ">= ?",
    "lt": "< ?",
    "lte": "<= ?",
    "like": "LIKE ? ESCAPE '\\'",  # case-insensitive substring, as Studio's name filter
}


@dataclass(frozen=True)
class Filter:
    field: str  # a key of ASSET_FIELDS / TASK_FIELDS / WEBHOOK_FIELDS
    op: str  # a key of _OPERATORS
    value: Any


@dataclass(frozen=True)
class ListQuery:
    limit: int = 20
    offset: int = 0
    filters: Sequence[Filter] = ()
    order: Sequence[tuple[str, bool]] = (("updatedAt", True), ("createdAt", True))
    count: bool = False


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
    """The base of each area's mixin; Store combines them over one connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def _row(self, sql: str, args: Iterable[Any] = ()) -> aiosqlite.Row | None:
        async with self._db.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _list(
        self, table: str, fields: dict[str, str], base: str, tenant: str, query: ListQuery
    ) -> tuple[list[Doc], int | None]:
        where = [f"{base}tenant = ?"]
        args: list[Any] = [tenant]
        for f in query.filters:
            where.append(f"{fields[f.field]} {_OPERATORS[f.op]}")
            args.append(f.value)
        clause = " AND ".join(where)
        # rowid last: ties (same-millisecond writes) still page deterministically, newest first.
        order = ", ".join(
            [f"{fields[name]} {'DESC' if desc else 'ASC'}" for name, desc in query.order]
            + ["rowid DESC"]
        )
        sql = f"SELECT doc FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?"
        docs = [json.loads(r[0]) for r in await self._rows(sql, (*args, query.limit, query.offset))]
        total = None
        if query.count:
            row = await self._row(f"SELECT COUNT(*) FROM {table} WHERE {clause}", args)
            total = int(row[0]) if row else 0
        return docs, total
