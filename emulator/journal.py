"""The request journal: the last N HTTP calls, with who made them and what they got.

One ring buffer for the whole server, so a long-running dev server never grows: its size
is the `journal_size` setting. Each call keeps the start of its JSON request and response
bodies (KEEP_BYTES each), and all calls together keep at most `body_budget` bytes of
bodies beyond the list excerpt: past that, the oldest calls keep only the excerpt lists
show (LIST_CHARS). Calls are tagged with their tenant, and reads filter by it, so tests
sharing a server each see their own calls. No aiohttp here: the middleware and the routes
feed and read it.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

LIST_CHARS = 1024  # of each body in a list: enough to assert on, small enough to page
KEEP_BYTES = 64 * 1024  # of each body kept at all (a JSON request body is capped at 100 kB)
BODY_BUDGET = 32 * 1024**2  # bytes of bodies past LIST_CHARS, over all calls


class Kept(NamedTuple):
    """What the journal holds of one body: all of it, or its start.

    The bytes are kept as the server had them (for a body up to KEEP_BYTES, the very
    object it sent: no copy) and decoded only when someone reads the journal, which is
    far rarer than recording: recording is on every request's path (issue 16; a tuple,
    as a frozen dataclass costs several times as much to make)."""

    raw: bytes
    size: int  # bytes of the body as it was sent
    complete: bool

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", errors="replace")

    @property
    def weight(self) -> int:
        """Bytes held beyond what a list shows: what the body budget counts."""
        return max(len(self.raw) - LIST_CHARS, 0)

    def cut(self, chars: int) -> Kept:
        if len(self.raw) <= chars:  # a character is at least one byte
            return self
        text = self.text
        if len(text) <= chars:
            return self
        return Kept(text[:chars].encode("utf-8"), self.size, complete=False)


def keep(raw: bytes | None, limit: int = KEEP_BYTES) -> Kept | None:
    """The start of a body; None for no body."""
    if not raw:
        return None
    # Slicing a bytes object whole gives the object itself back: no copy for most bodies.
    return Kept(raw[:limit], len(raw), complete=len(raw) <= limit)


@dataclass
class Call:
    """One HTTP call as the client saw it answered."""

    id: int  # increasing per server: the cursor of `before=`
    time: int  # ms on the caller's clock (frozen with the manual clock, like asset times)
    tenant: str | None
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    status: int = 0
    body: Kept | None = None  # a JSON request body the server read
    response: Kept | None = None  # the response body, when it was in memory
    fault: str | None = None  # the scenario rule that changed this call, if any
    # Wall-clock ms from the request reaching the middleware to the handler returning
    # (monotonic, so it stays real with the manual clock). A body the handler streams
    # itself is in it; one aiohttp sends afterwards (a FileResponse) is not.
    duration_ms: float = 0.0

    @property
    def weight(self) -> int:
        """Bytes held beyond what a list shows: what the body budget counts."""
        return (self.body.weight if self.body else 0) + (
            self.response.weight if self.response else 0
        )

    def to_wire(self, full: bool = False) -> dict[str, Any]:
        """The call as JSON; bodies cut to LIST_CHARS unless `full` (its own endpoint).

        A body shown in part carries `<name>Truncated: true` and `<name>Bytes`, its size.
        """
        doc: dict[str, Any] = {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "durationMs": self.duration_ms,
            "faultInjected": self.fault is not None,
        }
        # Optional fields are omitted, never null, as everywhere on the wire.
        if self.tenant is not None:
            doc["tenant"] = self.tenant
        for name, kept in (("body", self.body), ("response", self.response)):
            if kept is None:
                continue
            shown = kept if full else kept.cut(LIST_CHARS)
            doc[name] = shown.text
            if not shown.complete:
                doc[f"{name}Truncated"] = True
                doc[f"{name}Bytes"] = kept.size
        if self.fault is not None:
            doc["fault"] = self.fault
        return doc


class Query(NamedTuple):
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
    def __init__(
        self, size: int, now_ms: Callable[[str | None], int], body_budget: int = BODY_BUDGET
    ) -> None:
        if size < 0:
            raise ValueError("journal size must be 0 or more")
        self._calls: deque[Call] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._now_ms = now_ms
        self._budget = body_budget
        # Calls holding more than the list excerpt, oldest first, and what they weigh.
        self._heavy: deque[Call] = deque()
        self._weight = 0

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
        duration_ms: float = 0.0,
    ) -> Call:
        call = Call(
            id=next(self._ids),
            time=self._now_ms(tenant),
            tenant=tenant,
            method=method,
            path=path,
            query=dict(query) if query else {},
            status=status,
            body=keep(body),
            response=keep(response),
            fault=fault,
            duration_ms=round(max(duration_ms, 0.0), 3),
        )
        if self.size == 0:
            return call
        full = len(self._calls) == self.size
        if full and self._heavy and self._heavy[0] is self._calls[0]:
            # The deque drops its oldest call: it stops counting against the budget too.
            self._weight -= self._heavy.popleft().weight
        self._calls.append(call)
        weight = call.weight
        if weight:
            self._heavy.append(call)
            self._weight += weight
        while self._weight > self._budget and self._heavy:
            self._slim(self._heavy.popleft())
        return call

    def _slim(self, call: Call) -> None:
        """Keep only the list excerpt of an old call's bodies."""
        self._weight -= call.weight
        call.body = call.body.cut(LIST_CHARS) if call.body else None
        call.response = call.response.cut(LIST_CHARS) if call.response else None

    def read(
        self, query: Query, *, before: int | None = None, limit: int | None = None
    ) -> list[Call]:
        """Matching calls, newest first: those with an id below `before`, at most `limit`."""
        found: list[Call] = []
        for call in reversed(self._calls):
            if before is not None and call.id >= before:
                continue
            if query.selects(call):
                found.append(call)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def get(self, call_id: int, tenant: str | None = None) -> Call | None:
        """One call by id; with a tenant, only if it is that tenant's."""
        for call in reversed(self._calls):
            if call.id == call_id:
                return call if tenant is None or call.tenant == tenant else None
            if call.id < call_id:
                break
        return None

    def clear(self, tenant: str | None = None) -> int:
        """Forget one tenant's calls, or with None every call; returns how many went."""
        before = len(self._calls)
        kept = [] if tenant is None else [c for c in self._calls if c.tenant != tenant]
        self._calls = deque(kept, maxlen=self._calls.maxlen)
        # _heavy holds only calls still in the ring, oldest first.
        self._heavy = deque(c for c in self._heavy if tenant is not None and c.tenant != tenant)
        self._weight = sum(c.weight for c in self._heavy)
        return before - len(self._calls)
