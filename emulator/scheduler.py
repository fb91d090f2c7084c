"""Runs planned steps when their time comes, on whichever clock the server was given.

Steps live in the store, so the plan survives restarts. With the real clock a background
loop wakes at the next due time; with the manual clock nothing happens until advance(),
which walks time forward step by step so each transition is stamped with its own due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from emulator.clock import Clock, ManualClock, monotonic
from emulator.models import Step
from emulator.store import Store

log = logging.getLogger(__name__)

IDLE_WAKE_SECONDS = 60.0


class TimedWork(Protocol):
    """Other work on the same clock (webhook deliveries) that advance() walks through."""

    async def due_times(self, tenant: str | None) -> list[tuple[str, int]]:
        """(tenant, due ms) of what is waiting for a later time."""
        ...

    async def run_due(self, tenant: str | None, deadline: float | None = None) -> None:
        """Run what is due; wait for it until `deadline` (monotonic seconds) at most."""
        ...

    # How long, in wall-clock seconds, one advance() may wait for this work in all.
    advance_wait_seconds: float


class Scheduler:
    def __init__(self, store: Store, clock: Clock, apply: Callable[[Step], Awaitable[None]]):
        self._store = store
        self._clock = clock
        self._apply = apply
        self._lock = asyncio.Lock()  # steps are applied one at a time, in due order
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.also: list[TimedWork] = []

    def start(self) -> None:
        if not self._clock.manual:
            self._loop_task = asyncio.create_task(self._run_forever(), name="scheduler")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    def wake(self) -> None:
        self._wake.set()

    async def run_due(self, tenant: str | None = None) -> int:
        """Apply every step whose time has come; returns how many were applied."""
        async with self._lock:
            return await self._run_due_locked(tenant)

    async def _run_due_locked(self, tenant: str | None) -> int:
        applied = 0
        while True:
            due = [
                s
                for s in await self._store.steps(tenant)
                if s.due_ms <= self._clock.now_ms(s.tenant)
            ]
            if not due:
                return applied
            for step in due:
                await self._apply(step)
                applied += 1

    async def advance(self, ms: int, tenant: str | None = None) -> int:
        """Move manual time forward by `ms`, applying each step at its own due time."""
        clock = self._clock
        if not isinstance(clock, ManualClock):
            raise TypeError("advance needs the manual clock")
        budget = max((other.advance_wait_seconds for other in self.also), default=0.0)
        deadline = monotonic() + budget
        async with self._lock:
            applied = await self._run_due_locked(tenant)
            await self._run_also(tenant, deadline)
            remaining = ms
            while True:
                steps = await self._store.steps(tenant)
                waits = [(s.due_ms - clock.now_ms(s.tenant), s.seq or 0) for s in steps]
                for other in self.also:
                    later = await other.due_times(tenant)
                    waits += [(due - clock.now_ms(t), 0) for t, due in later]
                upcoming = [w for w in waits if w[0] <= remaining]
                if not upcoming:
                    clock.advance_ms(remaining, tenant)
                    return applied
                wait = max(min(upcoming)[0], 0)
                clock.advance_ms(wait, tenant)
                remaining -= wait
                applied += await self._run_due_locked(tenant)
                await self._run_also(tenant, deadline)

    async def _run_also(self, tenant: str | None, deadline: float) -> None:
        for other in self.also:
            await other.run_due(tenant, deadline)

    async def _run_forever(self) -> None:
        while True:
            self._wake.clear()
            delay = IDLE_WAKE_SECONDS
            try:
                await self.run_due()
                steps = await self._store.steps()
            except Exception:  # keep the loop alive (and not spinning); the log has it
                log.exception("applying a processing step failed")
                steps, delay = [], 1.0
            if steps:
                delay = min(delay, (steps[0].due_ms - self._clock.now_ms(steps[0].tenant)) / 1000)
            await self._clock.wait(delay, self._wake)
