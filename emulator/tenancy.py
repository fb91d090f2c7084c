"""The control plane's reset: a tenant's (or everyone's) data goes, everywhere it lives.

Each part that keeps something per tenant is handed in here once (app.py) and asked to
drop it, in an order that leaves nothing running against data that is gone: background
jobs first, then uploads and deliveries in flight, then the stored rows and their files,
then the tenant's scenario and time, and last the events kept for `listen`.
"""

from __future__ import annotations

from emulator.access import PlaybackAccess
from emulator.api_keys import ApiKeys
from emulator.blobs import Blobs
from emulator.delivery import Deliveries
from emulator.live_events import LiveEvents
from emulator.processing import Processing
from emulator.rulebook import Rulebook
from emulator.scheduler import Scheduler
from emulator.signing_keys import SigningKeys
from emulator.store import Store, TenantCounts
from emulator.tus import TusUploads


class Tenancy:
    def __init__(
        self,
        *,
        store: Store,
        blobs: Blobs,
        scheduler: Scheduler,
        rules: Rulebook,
        processing: Processing,
        tus: TusUploads,
        deliveries: Deliveries,
        signing_keys: SigningKeys,
        access: PlaybackAccess,
        api_keys: ApiKeys,
        live_events: LiveEvents,
    ) -> None:
        self._store = store
        self._blobs = blobs
        self._scheduler = scheduler
        self._rules = rules
        self._processing = processing
        self._tus = tus
        self._deliveries = deliveries
        self._signing_keys = signing_keys
        self._access = access
        self._api_keys = api_keys
        self._live_events = live_events

    async def tenants(self, tenant: str | None) -> list[TenantCounts]:
        """Every tenant that has assets or webhooks (None), or that one tenant, always
        listed, so a key with nothing yet still sees itself (the dashboard's list)."""
        found = await self._store.tenant_counts(tenant)
        if tenant is not None and not found:
            return [TenantCounts(tenant, 0, 0)]
        return found

    async def reset(self, tenant: str | None) -> None:
        """Empty one tenant, or with None every tenant."""
        self._processing.cancel_tenant(tenant)
        await self._tus.forget(tenant)
        await self._deliveries.reset(tenant)
        for relative in await self._store.reset(tenant):
            self._blobs.remove_asset_media(relative)
        await self._signing_keys.reset(tenant)
        await self._api_keys.reset(tenant)
        self._access.forget(tenant)
        self._rules.forget(tenant)
        await self._scheduler.forget(tenant)
        # Last: the tenant's outbox rows are gone by now, so only a fan-out pass already
        # under way (one batch) could still publish a pre-reset event.
        self._live_events.forget(tenant)
