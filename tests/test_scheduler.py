"""The real-clock scheduler loop, run against a clock that fast-forwards when waited on."""

from __future__ import annotations

import asyncio

from emulator.app import create_app
from emulator.routes.common import PROCESSING
from emulator.scheduler import IDLE_WAKE_SECONDS
from emulator.settings import Settings
from tests.conftest import SAMPLE_MP4
from tests.helpers import get_json, upload


class FastForwardClock:
    """Real-clock semantics (time passes while waiting) without any real waiting."""

    manual = False

    def __init__(self) -> None:
        self.now = 1_800_000_000_000
        self.waits: list[float] = []

    def now_ms(self, tenant: str | None = None) -> int:
        return self.now

    async def wait(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        self.waits.append(seconds)
        if wake is None:  # other periodic loops (e.g. upload expiry) stay parked
            await asyncio.Event().wait()
        if seconds >= IDLE_WAKE_SECONDS:
            await wake.wait()  # nothing planned: wait for work instead of racing ahead
            return
        self.now += max(round(seconds * 1000), 0)
        await asyncio.sleep(0)


async def test_loop_applies_steps_at_their_due_times(aiohttp_client, tmp_path, auth) -> None:
    clock = FastForwardClock()
    app = create_app(Settings(data_dir=tmp_path / "d"), clock=clock)
    client = await aiohttp_client(app)
    created = await upload(client, auth, SAMPLE_MP4)
    await app[PROCESSING].settle()  # hashing and ffprobe, which run after the PUT's answer
    path = f"/api/asset/{created['asset']['id']}"
    for _ in range(200):  # bounded: each turn lets the loop take one step
        asset = await get_json(client, path, auth)
        if asset["status"]["phase"] == "ready":
            break
        await asyncio.sleep(0)
    assert asset["status"]["phase"] == "ready"
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    assert task["status"]["phase"] == "completed"
    # The loop slept exactly until each step was due: ready 3.5 s after the upload.
    assert asset["status"]["updatedAt"] == task["scheduledAt"] + 3500
    assert 0.75 in [round(w, 3) for w in clock.waits]  # woke at due times, not by polling


async def test_advance_to_next_moves_exactly_to_each_planned_step(client, auth) -> None:  # type: ignore[no-untyped-def]
    """{"next": true} takes time to the next due work and no further, so a test sees the
    asset in every phase, and `nextDue` says when the step after is due."""
    created = await upload(client, auth, SAMPLE_MP4)
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    start = task["scheduledAt"]
    offsets, phases = [], []
    for _ in range(20):  # bounded: the default timeline has six steps
        resp = await client.post("/_emulator/clock/advance", json={"next": True}, headers=auth)
        assert resp.status == 200, await resp.text()
        moved = await resp.json()
        asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
        offsets.append(moved["now"] - start)
        phases.append(asset["status"]["phase"])
        if "nextDue" not in moved:
            break
        assert moved["nextDue"] > moved["now"]
    # The default timeline: queued 0.5 s, then 3 s of processing in four reports.
    assert offsets == [500, 1250, 2000, 2750, 3500]
    assert phases == ["processing"] * 4 + ["ready"]
    bad = await client.post(
        "/_emulator/clock/advance", json={"next": True, "seconds": 1}, headers=auth
    )
    assert bad.status == 400
