"""KeyedLocks: one holder per key, queued by default; refused at once (`wait=False`) or
after a bounded wait (`timeout`), as tus answers 423 rather than queueing PATCHes."""

from __future__ import annotations

import asyncio

import pytest

from emulator.keyed import Busy, KeyedLocks


async def _holding(
    locks: KeyedLocks, key: str, held: asyncio.Event, release: asyncio.Event
) -> None:
    async with locks.hold(key):
        held.set()
        await release.wait()


@pytest.fixture
async def held() -> tuple[KeyedLocks, asyncio.Event, asyncio.Task[None]]:
    """A KeyedLocks whose key "k" a task holds until the returned event is set."""
    locks, is_held, release = KeyedLocks(), asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(_holding(locks, "k", is_held, release))
    await is_held.wait()
    return locks, release, holder


async def test_a_free_key_is_taken_without_yielding_to_the_event_loop() -> None:
    locks = KeyedLocks()
    ran: list[str] = []
    asyncio.get_running_loop().call_soon(ran.append, "other work")
    for kwargs in ({}, {"wait": False}, {"timeout": 5.0}):
        async with locks.hold("k", **kwargs):  # type: ignore[arg-type]
            assert locks.busy("k")
    assert ran == []  # nothing else ran meanwhile
    assert not locks.busy("k")
    assert len(locks) == 0


async def test_wait_false_refuses_a_busy_key_at_once(held) -> None:  # type: ignore[no-untyped-def]
    locks, release, holder = held
    with pytest.raises(Busy):
        async with locks.hold("k", wait=False):
            pytest.fail("the key was held")
    async with locks.hold("other", wait=False):  # other keys are free
        assert len(locks) == 2
    release.set()
    await holder
    async with locks.hold("k", wait=False):
        pass
    assert len(locks) == 0


async def test_wait_false_also_refuses_while_somebody_waits() -> None:
    locks = KeyedLocks()
    entered = asyncio.Event()

    async def waiter() -> None:
        async with locks.hold("k"):
            entered.set()

    async with locks.hold("k"):
        queued = asyncio.create_task(waiter())
        await asyncio.sleep(0)  # the waiter queues
    # Released, and not yet taken: the waiter is next, so a newcomer is refused.
    assert not entered.is_set()
    with pytest.raises(Busy):
        async with locks.hold("k", wait=False):
            pass
    await queued
    assert entered.is_set()
    assert len(locks) == 0


async def test_a_timeout_refuses_once_it_has_passed(held) -> None:  # type: ignore[no-untyped-def]
    locks, release, holder = held
    with pytest.raises(Busy):
        async with locks.hold("k", timeout=0.05):
            pytest.fail("the key was held")
    assert len(locks) == 1  # the holder's alone: the refused waiter is forgotten
    release.set()
    await holder
    assert len(locks) == 0


async def test_a_timeout_gets_a_key_released_in_time(held) -> None:  # type: ignore[no-untyped-def]
    locks, release, holder = held
    got = asyncio.Event()

    async def waiter() -> None:
        async with locks.hold("k", timeout=5.0):
            got.set()

    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    assert not got.is_set()
    release.set()
    await asyncio.wait_for(waiting, 5)
    await holder
    assert got.is_set()
    assert len(locks) == 0


async def test_a_cancelled_waiter_never_keeps_the_key(held) -> None:  # type: ignore[no-untyped-def]
    locks, release, holder = held

    async def waiter() -> None:
        async with locks.hold("k", timeout=5.0):
            pytest.fail("cancelled before it got the key")

    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    waiting.cancel()
    release.set()  # released while the cancelled waiter is still queued
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await holder
    await asyncio.sleep(0)  # the cancelled acquisition settles
    async with locks.hold("k", wait=False):
        pass
    assert len(locks) == 0
