"""Which tenants have data: the dashboard's tenant list (GET /_emulator/tenants)."""

from __future__ import annotations

from typing import NamedTuple

from emulator.store.base import Tables, tenant_scope


class TenantCounts(NamedTuple):
    tenant: str
    assets: int  # not deleted
    webhooks: int  # not deleted


class TenantTables(Tables):
    async def tenant_counts(self, tenant: str | None = None) -> list[TenantCounts]:
        """Every tenant with a live asset or webhook (or just `tenant`), by tenant."""
        clause, args = tenant_scope(tenant, "AND")
        rows = await self._rows(
            f"""
            SELECT tenant, SUM(kind = 'a'), SUM(kind = 'w') FROM (
                SELECT tenant, 'a' AS kind FROM assets WHERE deleted = 0 {clause}
                UNION ALL
                SELECT tenant, 'w' AS kind FROM webhooks WHERE deleted = 0 {clause}
            ) GROUP BY tenant ORDER BY tenant
            """,
            args + args,
        )
        return [TenantCounts(str(row[0]), int(row[1]), int(row[2])) for row in rows]
