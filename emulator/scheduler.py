"""The one registry of timed work, run on the one clock.

Everything that falls due at a time is a TimedWork registered here once, in app.py:
processing steps (emulator/processing.py), webhook deliveries and their retries
(emulator/delivery.py), tus upload expiry (emulator/tus.py), and the output steps still
to come. Each keeps its own due work in the store and says when it is next due; this
module decides when to run it:

- on the real clock, one loop sleeps until the earliest due time of any of them (or until
  woken because something new was planned) and runs what fell due;
- on the manual clock nothing runs by itself: advance() walks time to each due time in
  turn, so every transition is stamped with its own time, and advance_to_next() moves
  exactly to the next one, so a test reaches `ready` in as many steps as there are.

This module and clock.py are the only ones that know which clock is in use. The manual
clock's time is kept in the store, so a restart resumes exactly where it stood.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from emulator.clock import Clock, ManualClock, monotonic
from emulator.errors import BadRequest, InsufficientStorage
from emulator.store import Store

log = logging.getLogger(__name__)

# With nothing planned the real-clock loop still looks again this often (work planned by
# another process on the same data dir is not expected, but costs nothing to catch).
IDLE_WAKE_SECONDS = 60.0
# How long one manual-clock advance may wait, in wall-clock seconds, for work it started
# (webhook attempts) before it answers; the rest finishes in the background.
ADVANCE_WAIT_SECONDS = 5.0
# Under the manual clock a test waits on every answer: peers (webhook receivers) get at
# most this long, whatever Studio would give them on the real clock.
MANUAL_PATIENCE_SECONDS = 2.0
CLOCK_META_KEY = "manual_clock"


class TimedWork(Protocol):
    """One kind of work that falls due at times on the clock."""

    async def due_times(self, tenant: str | None) -> Sequence[tuple[str, int]]:
        """(tenant, due ms) of the work waiting (the tenant's, or None: everyone's)."""
        ...

    async def run_due(self, tenant: str | None, deadline: float) -> int:
        """Run what is due now; returns how many items ran. Work it starts without
        finishing (a webhook attempt) may be waited for until `deadline` (monotonic
        seconds), no longer."""
        ...

    async def settle(self, tenant: str | None) -> None:
        """Wait for background work in flight that will plan timed work (a download, an
        analysis), so that moving time is deterministic."""
        ...


class Advanced(NamedTuple):
    now: int  # the caller's time after the move, in ms
    applied: int  # items of work that ran
    next_due: int | None  # when the next item is due on the caller's clock, if any


class Scheduler:
    def __init__(self, clock: Clock, store: Store) -> None:
        self._clock = clock
        self._store = store
        self._work: list[TimedWork] = []
        self._lock = asyncio.Lock()  # one pass over due work at a time, in due order
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # -- wiring and lifecycle -----------------------------------------------------------

    def register(self, work: TimedWork) -> None:
        """Add a kind of timed work (app.py, once each, before start)."""
        self._work.append(work)

    async def start(self) -> None:
        """Restore manual time, run what is due, and (real clock) start the loop."""
        if isinstance(self._clock, ManualClock):
            saved = await self._store.get_meta(CLOCK_META_KEY)
            if saved:
                self._clock.restore(json.loads(saved))
        await self.run_due()
        if not isinstance(self._clock, ManualClock):
            self._loop_task = asyncio.create_task(self._run_forever(), name="scheduler")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    # -- what other parts ask of time ---------------------------------------------------

    @property
    def mode(self) -> str:
        return "manual" if isinstance(self._clock, ManualClock) else "real"

    def now_ms(self, tenant: str | None = None) -> int:
        return self._clock.now_ms(tenant)

    def patience(self, seconds: float) -> float:
        """How long to wait for a peer that Studio would give `seconds`: all of it on the
        real clock, at most MANUAL_PATIENCE_SECONDS while a test waits on manual time."""
        if isinstance(self._clock, ManualClock):
            return min(seconds, MANUAL_PATIENCE_SECONDS)
        return seconds

    async def hold_answer_for(self, job: asyncio.Future[None]) -> None:
        """Manual time: wait for `job` before answering, so what a test reads next never
        depends on how fast this machine hashes and probes. Real time: answer at once."""
        if isinstance(self._clock, ManualClock):
            await asyncio.wait([job])

    def wake(self) -> None:
        """Something new was planned: the real-clock loop looks at due times again."""
        self._wake.set()

    async def poke(self, tenant: str) -> None:
        """Run the tenant's work that is already due (new work may be due at once, e.g.
        the instant scenario's steps), and have the loop look at due times again."""
        await self.run_due(tenant)
        self.wake()

    async def run_due(self, tenant: str | None = None) -> int:
        """Run every kind of work that is due now, without waiting on peers."""
        async with self._lock:
            return await self._run_all(tenant, monotonic())

    async def forget(self, tenant: str | None) -> None:
        """A reset: the tenant's own time (None: every tenant's) goes back to the base."""
        if isinstance(self._clock, ManualClock):
            self._clock.forget(tenant)
            await self._save_time()

    # -- manual time ----------------------------------------------------------------------

    async def advance(self, ms: int, tenant: str | None) -> Advanced:
        """Move manual time forward by `ms` (the tenant's, or everyone's), running each
        item of work at its own due time. BadRequest on the real clock."""
        clock = self._manual()
        deadline = monotonic() + ADVANCE_WAIT_SECONDS
        # Settled before the lock: a job that ends plans work, and pokes the scheduler.
        await self._settle(tenant)
        async with self._lock:
            applied = await self._run_all(tenant, deadline)
            remaining = ms
            while (wait := await self._next_wait(tenant)) is not None and wait <= remaining:
                clock.advance_ms(wait, tenant)
                remaining -= wait
                applied += await self._run_all(tenant, deadline)
            clock.advance_ms(remaining, tenant)
            applied += await self._run_all(tenant, deadline)
            await self._save_time()
            return await self._advanced(tenant, applied)

    async def advance_to_next(self, tenant: str | None) -> Advanced:
        """Move manual time exactly to the next due item (if any) and run what is due
        then; `next_due` says whether anything is left."""
        clock = self._manual()
        deadline = monotonic() + ADVANCE_WAIT_SECONDS
        # Settled before the lock: a job that ends plans work, and pokes the scheduler.
        await self._settle(tenant)
        async with self._lock:
            applied = await self._run_all(tenant, deadline)
            if applied == 0 and (wait := await self._next_wait(tenant)) is not None:
                clock.advance_ms(wait, tenant)
                applied = await self._run_all(tenant, deadline)
            await self._save_time()
            return await self._advanced(tenant, applied)

    def _manual(self) -> ManualClock:
        if not isinstance(self._clock, ManualClock):
            raise BadRequest("the clock is real; start the server with --clock manual to move it")
        return self._clock

    async def _advanced(self, tenant: str | None, applied: int) -> Advanced:
        wait = await self._next_wait(tenant)
        now = self._clock.now_ms(tenant)
        return Advanced(now=now, applied=applied, next_due=None if wait is None else now + wait)

    async def _save_time(self) -> None:
        if isinstance(self._clock, ManualClock):
            await self._store.set_meta(CLOCK_META_KEY, json.dumps(self._clock.state()))

    # -- internals ----------------------------------------------------------------------

    async def _settle(self, tenant: str | None) -> None:
        for work in self._work:
            await work.settle(tenant)

    async def _run_all(self, tenant: str | None, deadline: float) -> int:
        """Run what is due of every kind, again until nothing more is (running one item
        can make another due now), in registration order."""
        total = 0
        while True:
            ran = 0
            for work in self._work:
                ran += await work.run_due(tenant, deadline)
            total += ran
            if ran == 0:
                return total

    async def _next_wait(self, tenant: str | None) -> int | None:
        """Milliseconds until the earliest item due later than now, on its tenant's clock."""
        waits = [
            due - self._clock.now_ms(owner)
            for work in self._work
            for owner, due in await work.due_times(tenant)
        ]
        later = [w for w in waits if w > 0]
        return min(later) if later else None

    async def _run_forever(self) -> None:
        while True:
            self._wake.clear()
            delay = IDLE_WAKE_SECONDS
            try:
                await self.run_due()
                wait = await self._next_wait(None)
                if wait is not None:
                    delay = min(delay, wait / 1000)
            except InsufficientStorage:  # a full disk: try again shortly
                log.warning("running due work: the data dir's disk is full; retrying")
                delay = 1.0
            except Exception:  # keep the loop alive (and not spinning); the log has it
                log.exception("running due work failed")
                delay = 1.0
            await self._clock.wait(delay, self._wake)
