"""Time: the only module that reads the wall clock or sleeps.

SystemClock is real time. ManualClock stands still until told to move; each tenant has its
own offset on top of a shared base, so advancing one tenant's time (one test) never moves
another tenant's assets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    manual: bool

    def now_ms(self, tenant: str | None = None) -> int: ...

    async def wait(self, seconds: float, wake: asyncio.Event | None = None) -> None: ...


def monotonic() -> float:
    """Seconds on a monotonic clock, for measuring durations (never for timestamps)."""
    return time.monotonic()


async def real_delay(seconds: float) -> None:
    """Wait in wall-clock time, whichever clock the server runs on.

    Injected HTTP latency is felt by clients in real time (their timeouts, their
    spinners), so it must not follow the manual clock: frozen time would hold the
    response until somebody advanced it, which is not what a `delay` means.
    """
    await asyncio.sleep(max(seconds, 0))


async def real_timeout(awaitable: Awaitable[T], seconds: float) -> T:
    """`awaitable`'s result, or asyncio.TimeoutError once `seconds` of wall-clock time
    have passed (cancelling it), whichever clock the server runs on: a network timeout
    is about a peer that went quiet, which frozen manual time knows nothing about."""
    return await asyncio.wait_for(awaitable, max(seconds, 0))


class SystemClock:
    manual = False

    def now_ms(self, tenant: str | None = None) -> int:
        return int(time.time() * 1000)

    async def wait(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleep for `seconds`, or until `wake` is set, whichever comes first."""
        if wake is None:
            await asyncio.sleep(max(seconds, 0))
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=max(seconds, 0))


class ManualClock:
    """Frozen time that moves only through advance()."""

    manual = True

    def __init__(self, start_ms: int | None = None) -> None:
        self.base_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self.offsets: dict[str, int] = {}

    def now_ms(self, tenant: str | None = None) -> int:
        return self.base_ms + (self.offsets.get(tenant, 0) if tenant is not None else 0)

    def advance_ms(self, ms: int, tenant: str | None = None) -> None:
        """Move one tenant's time, or with tenant=None everybody's."""
        if ms < 0:
            raise ValueError("time only moves forward")
        if tenant is None:
            self.base_ms += ms
        else:
            self.offsets[tenant] = self.offsets.get(tenant, 0) + ms

    def forget(self, tenant: str | None = None) -> None:
        """Drop a tenant's offset (on reset); None drops them all."""
        if tenant is None:
            self.offsets.clear()
        else:
            self.offsets.pop(tenant, None)

    def state(self) -> dict[str, object]:
        return {"base_ms": self.base_ms, "offsets": dict(self.offsets)}

    def restore(self, state: dict[str, object]) -> None:
        """Resume exactly where a previous run stopped: manual time stays frozen across
        restarts, so nothing falls due just because the server was down for a while."""
        base = state.get("base_ms")
        if isinstance(base, int):
            self.base_ms = base
        offsets = state.get("offsets")
        if isinstance(offsets, dict):
            self.offsets = {str(k): int(v) for k, v in offsets.items()}

    async def wait(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Manual time never elapses by itself: only a wake-up ends the wait."""
        if wake is not None:
            await wake.wait()
        else:
            await asyncio.Event().wait()


def make_clock(mode: str) -> SystemClock | ManualClock:
    return ManualClock() if mode == "manual" else SystemClock()
