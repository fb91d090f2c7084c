"""asyncio locks and background jobs kept by key (an asset id, a tus upload), so one
upload at a time writes an asset's media or a tus upload's file, and an asset's
background work can be found, waited for or cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from emulator.clock import real_timeout

log = logging.getLogger(__name__)


class Busy(Exception):
    """Somebody else has the key: at once (`wait=False`) or still after the `timeout`."""


class KeyedLocks:
    """asyncio locks by key, forgotten once nobody holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys somebody holds or waits for."""
        return len(self._locks)

    def busy(self, key: str) -> bool:
        """Whether somebody holds the key's lock or waits for it. A caller that sees it
        free and then enters hold() takes it without yielding to the event loop."""
        return key in self._locks

    @contextlib.asynccontextmanager
    async def hold(
        self, key: str, *, wait: bool = True, timeout: float | None = None
    ) -> AsyncIterator[None]:
        """Hold the key for the block, after whoever has it or waits for it.

        `wait=False` refuses (Busy) at once when the key is busy, rather than queueing;
        `timeout` refuses once that many seconds of wall-clock time have passed without
        getting it (the holder is a request whose client may be gone: a manual clock
        must not stop that wait from ending). A free key is taken without yielding to
        the event loop, so nobody who came later can get it first.
        """
        queued = key in self._locks
        if queued and not wait:
            raise Busy(key)
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            if queued and timeout is not None:
                await self._acquire_within(key, lock, timeout)
            else:
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    @staticmethod
    async def _acquire_within(key: str, lock: asyncio.Lock, timeout: float) -> None:
        # The acquiring task is shielded and settled here, rather than left to the
        # timeout's cancellation: the lock may come at the very moment the wait ends,
        # and one taken then must be given back, not kept by nobody.
        acquiring = asyncio.ensure_future(lock.acquire())
        try:
            await real_timeout(asyncio.shield(acquiring), timeout)
        except BaseException as exc:
            if not acquiring.cancel() and not acquiring.cancelled():
                lock.release()  # it was ours already: give it back
            if isinstance(exc, asyncio.TimeoutError):
                raise Busy(key) from None
            raise


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
