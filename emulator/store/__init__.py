"""Persistence: the only package that runs SQL.

Each area keeps its queries in its own module (assets.py: assets, tasks, steps, meta;
tus.py: tus uploads; webhooks.py: webhooks, deliveries, their log; signing_keys.py:
access control's signing keys; api_keys.py: keys made through the control plane;
tenants.py: which tenants have data),
written as a mixin
over the store's connections; schema.py owns the file and its migrations. Store combines
the mixins, so callers keep one object (store.save(...), store.get_tus_upload(...)).
Every write is a whole unit of work on the one writer connection, one unit at a time,
which is all SQLite allows anyway; reads go to a second connection that only ever sees
committed data (base.py says why).
"""

from __future__ import annotations

from pathlib import Path

from emulator.reserve import DiskReserve
from emulator.store.api_keys import ApiKeyRow, ApiKeyTables
from emulator.store.assets import (
    ASSET_FIELDS,
    TASK_FIELDS,
    AssetRow,
    AssetTables,
    Changes,
    TaskRow,
)
from emulator.store.backup import backup_database
from emulator.store.base import Filter, ListQuery, Stored
from emulator.store.exports import ExportTables, PinnedFile, PinnedFound
from emulator.store.schema import connect
from emulator.store.signing_keys import SIGNING_KEY_FIELDS, SigningKeyRow, SigningKeyTables
from emulator.store.tenants import TenantCounts, TenantTables
from emulator.store.tus import TusRow, TusTables
from emulator.store.webhooks import (
    WEBHOOK_FIELDS,
    DeliveryRow,
    LogRow,
    WebhookRow,
    WebhookTables,
)

__all__ = [
    "ASSET_FIELDS",
    "SIGNING_KEY_FIELDS",
    "TASK_FIELDS",
    "WEBHOOK_FIELDS",
    "ApiKeyRow",
    "AssetRow",
    "Changes",
    "DeliveryRow",
    "Filter",
    "ListQuery",
    "LogRow",
    "PinnedFile",
    "PinnedFound",
    "SigningKeyRow",
    "Store",
    "Stored",
    "TaskRow",
    "TenantCounts",
    "TusRow",
    "WebhookRow",
    "backup_database",
]


class Store(
    AssetTables,
    TusTables,
    WebhookTables,
    ExportTables,
    SigningKeyTables,
    ApiKeyTables,
    TenantTables,
):
    @classmethod
    async def open(cls, path: Path, reserve: DiskReserve | None = None) -> Store:
        """Raises ConfigError if the file there is not a database this can use. With a
        reserve, a write that finds the disk full releases it and tries again."""
        writer, reader = await connect(path)
        return cls(writer, reader, reserve)
