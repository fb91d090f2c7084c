"""Encoded answers of `GET /api/asset/{id}`, kept in memory until the asset is written.

An emulator has no replicas and a small working set, so a read of an unchanged asset can
skip the database hop, the JSON parse, Studio's external shaping and the JSON encoding:
one dict lookup plus the tenant check (issue 16). Correctness comes first:

- The store calls `invalidate` with the ids of every unit of work that wrote assets,
  right after its commit and before the writer's caller continues, so a write followed
  by a read never answers the old document (a restart starts empty).
- A read that missed fills the cache only if no invalidation happened since it began
  (`generation`): its row may come from before a commit that has since invalidated the
  id, and putting it in afterwards would serve the old document until the next write.
- Only documents that were found and not deleted are kept, with their tenant: another
  tenant's read gets the same 404 as without the cache (the caller checks the tenant).

Bounded by bytes: the encoded bodies plus an estimate of Python's own overhead per entry
and per variant, `max_bytes` in all (least recently used first out), so the server's
memory stays flat however many assets it holds. No aiohttp and no SQL here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

DEFAULT_MAX_BYTES = 16 * 1024**2
# What Python holds beyond a body's bytes: the entry object, its id key, the LRU node and
# variants dict (per entry: ~500 bytes with tracemalloc on 3.11); the bytes header and
# dict slot (~35) plus the variant's key, a tuple and origin string made per request
# (~130), per body.
ENTRY_OVERHEAD = 512
VARIANT_OVERHEAD = 160
# The `?details` flag times the origins a server is called under (usually one or two).
MAX_VARIANTS = 4


@dataclass
class _Entry:
    tenant: str
    variants: dict[Hashable, bytes] = field(default_factory=dict)
    cost: int = ENTRY_OVERHEAD


class ReadCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.generation = 0  # bumped by every invalidation
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, asset_id: str, variant: Hashable) -> tuple[str, bytes] | None:
        """(tenant, encoded body) of a kept read, or None."""
        entry = self._entries.get(asset_id)
        body = entry.variants.get(variant) if entry is not None else None
        if entry is None or body is None:
            self.misses += 1
            return None
        self._entries.move_to_end(asset_id)
        self.hits += 1
        return entry.tenant, body

    def put(
        self, asset_id: str, tenant: str, variant: Hashable, body: bytes, generation: int
    ) -> None:
        """Keep a read that began at `generation`, unless an invalidation came since."""
        if generation != self.generation:
            return
        cost = len(body) + VARIANT_OVERHEAD
        if cost + ENTRY_OVERHEAD > self.max_bytes:
            return
        entry = self._entries.get(asset_id)
        if entry is None or entry.tenant != tenant:
            self._drop(asset_id)
            entry = self._entries[asset_id] = _Entry(tenant)
            self._bytes += entry.cost
        elif variant not in entry.variants and len(entry.variants) >= MAX_VARIANTS:
            oldest = next(iter(entry.variants))
            self._forget_variant(entry, oldest)
        if variant in entry.variants:
            self._forget_variant(entry, variant)
        entry.variants[variant] = body
        entry.cost += cost
        self._bytes += cost
        self._entries.move_to_end(asset_id)
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def invalidate(self, asset_ids: Iterable[str] | None) -> None:
        """Forget these assets (None: every asset), e.g. after a write committed them."""
        self.generation += 1
        if asset_ids is None:
            self._entries.clear()
            self._bytes = 0
            return
        for asset_id in asset_ids:
            self._drop(asset_id)

    def _forget_variant(self, entry: _Entry, variant: Hashable) -> None:
        cost = len(entry.variants.pop(variant)) + VARIANT_OVERHEAD
        entry.cost -= cost
        self._bytes -= cost

    def _drop(self, asset_id: str) -> None:
        entry = self._entries.pop(asset_id, None)
        if entry is not None:
            self._bytes -= entry.cost
