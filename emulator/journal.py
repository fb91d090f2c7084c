"""The request journal: the last N HTTP calls, with who made them and what they got.

One ring buffer for the whole server, so a long-running dev server never grows: its size
is the `journal_size` setting, and each entry keeps only an excerpt of the bodies. Calls
are tagged with their tenant, and reads filter by it, so tests sharing a server each see
their own calls. No aiohttp here: the middleware and the routes feed and read it.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EXCERPT_CHARS = 512  # enough to assert on a JSON body; media bodies are never kept


@dataclass(frozen=True)
class Call:
    """One HTTP call as the client saw it answered."""

    id: int  # increasing per server: a cursor for "calls after this one"
    time: int  # ms on the caller's clock (frozen with the manual clock, like asset times)
    tenant: str | None
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0
    body: str | None = None  # excerpt of a JSON request body the server read
    response: str | None = None  # excerpt of the response body, when it was in memory
    fault: str | None = None  # the scenario rule that changed this call, if any

    def to_wire(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "faultInjected": self.fault is not None,
        }
        # Optional fields are omitted, never null, as everywhere on the wire.
        optional = {
            "tenant": self.tenant,
            "body": self.body,
            "response": self.response,
            "fault": self.fault,
        }
        doc.update({k: v for k, v in optional.items() if v is not None})
        return doc


def excerpt(raw: bytes | None) -> str | None:
    """The start of a body as text, marked when cut; None for no body."""
    if not raw:
        return None
    text = raw[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    if len(text) > EXCERPT_CHARS or len(raw) > EXCERPT_CHARS * 4:
        return text[:EXCERPT_CHARS] + f"… ({len(raw)} bytes)"
    return text


@dataclass(frozen=True)
class Query:
    """Which calls to read; empty fields match everything."""

    tenant: str | None = None  # None: every tenant's calls (and anonymous ones)
    method: str | None = None
    path: str | None = None  # a glob, like /api/asset/*
    since: int | None = None  # ms on the caller's clock, inclusive

    def selects(self, call: Call) -> bool:
        if self.tenant is not None and call.tenant != self.tenant:
            return False
        if self.method is not None and call.method != self.method.upper():
            return False
        if self.path is not None and not fnmatch.fnmatchcase(call.path, self.path):
            return False
        return self.since is None or call.time >= self.since


class Journal:
    def __init__(self, size: int, now_ms: Callable[[str | None], int]) -> None:
        if size < 0:
            raise ValueError("journal size must be 0 or more")
        self._calls: deque[Call] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._now_ms = now_ms

    @property
    def size(self) -> int:
        return self._calls.maxlen or 0

    def record(
        self,
        *,
        tenant: str | None,
        method: str,
        path: str,
        query: Mapping[str, str],
        status: int,
        body: bytes | None = None,
        response: bytes | None = None,
        fault: str | None = None,
    ) -> Call:
        call = Call(
            id=next(self._ids),
            time=self._now_ms(tenant),
            tenant=tenant,
            method=method,
            path=path,
            query=dict(query),
            status=status,
            body=excerpt(body),
            response=excerpt(response),
            fault=fault,
        )
        self._calls.append(call)  # a full deque drops the oldest call
        return call

    def read(self, query: Query) -> list[Call]:
        """Matching calls, oldest first."""
        return [call for call in self._calls if query.selects(call)]

    def clear(self, tenant: str | None = None) -> int:
        """Forget one tenant's calls, or with None every call; returns how many went."""
        before = len(self._calls)
        kept: Iterable[Call] = (
            () if tenant is None else [c for c in self._calls if c.tenant != tenant]
        )
        self._calls = deque(kept, maxlen=self._calls.maxlen)
        return before - len(self._calls)
