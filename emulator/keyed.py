"""asyncio locks and background jobs kept by key (an asset id), so the service can hold
one upload per asset and find, wait for or cancel an asset's background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class KeyedLocks:
    """asyncio locks by key, forgotten once nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def busy(self, key: str) -> bool:
        """Whether somebody holds the key's lock or waits for it. A caller that sees it
        free and then enters hold() takes it without yielding to the event loop."""
        return key in self._locks

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class KeyedJobs:
    """At most one background task per key, each owned by a tenant; a finished task is
    forgotten, and one that failed is logged (nobody else awaits it)."""

    def __init__(self) -> None:
        self._jobs: dict[str, tuple[str, asyncio.Task[None]]] = {}  # key → (tenant, task)

    def spawn(self, tenant: str, key: str, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        job = asyncio.create_task(work, name=f"{getattr(work, '__name__', 'job')} {key}")
        self._jobs[key] = (tenant, job)

        def forget(done: asyncio.Task[None]) -> None:
            if self._jobs.get(key, ("", None))[1] is done:
                del self._jobs[key]
            if not done.cancelled() and done.exception() is not None:
                log.error("%s failed", done.get_name(), exc_info=done.exception())

        job.add_done_callback(forget)
        return job

    def cancel(self, key: str) -> None:
        if key in self._jobs:
            self._jobs[key][1].cancel()

    def cancel_tenant(self, tenant: str | None) -> None:
        """Cancel a tenant's jobs (None: everyone's)."""
        for job in self._of(tenant):
            job.cancel()

    async def settle(self, tenant: str | None) -> None:
        """Wait until a tenant's jobs (None: everyone's) have ended, however they end."""
        for job in self._of(tenant):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(job)

    async def stop(self) -> None:
        jobs = self._of(None)
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(BaseException):
                await job

    def _of(self, tenant: str | None) -> list[asyncio.Task[None]]:
        return [job for owner, job in list(self._jobs.values()) if tenant in (None, owner)]
