"""The store's units of work are atomic: no coroutine can commit or roll back another's
half-written transaction (issue 11.1), and a restart repairs an asset whose processing
plan was left incomplete by an older version."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.errors import InsufficientStorage
from emulator.models import Step, StepKind
from emulator.reserve import DiskReserve
from emulator.settings import Settings
from emulator.store import AssetRow, Changes, ListQuery, Store, TaskRow
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, path_of, upload


def _steps(asset_id: str, count: int) -> list[Step]:
    return [
        Step(tenant="t", due_ms=i, asset_id=asset_id, task_id="task", kind=StepKind.PROGRESS)
        for i in range(count)
    ]


def _assets(prefix: str, count: int) -> list[AssetRow]:
    return [AssetRow("t", _asset_doc(f"{prefix}-{n:04d}-padding", "waiting")) for n in range(count)]


def _broken_task() -> TaskRow:
    # No "type": building the row's values raises midway through the transaction, after
    # the unit's asset rows were written.
    return TaskRow("t", {"id": "broken", "status": {"phase": "pending", "updatedAt": 0}})


async def test_a_failing_unit_of_work_never_rolls_back_or_commits_anothers(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        plans = [
            Changes(assets=_assets(f"ok{n}", 5), add_steps=_steps(f"asset-{n}", 200))
            for n in range(20)
        ]

        async def failing(n: int) -> None:
            with pytest.raises(KeyError):
                await store.save(Changes(assets=_assets(f"doomed{n}", 5), tasks=[_broken_task()]))

        await asyncio.gather(*(store.save(p) for p in plans), *(failing(n) for n in range(20)))
        steps = await store.steps()
        by_asset: dict[str, int] = {}
        for s in steps:
            by_asset[s.asset_id] = by_asset.get(s.asset_id, 0) + 1
        assert by_asset == {f"asset-{n}": 200 for n in range(20)}
        listed, total = await store.list_assets("t", ListQuery(limit=1000, count=True))
        assert total == 100 and not [d for d in listed if d["id"].startswith("doomed")]
    finally:
        await store.close()


async def test_a_cancelled_caller_still_gets_its_whole_unit_committed(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        job = asyncio.ensure_future(
            store.save(Changes(assets=_assets("a", 200), add_steps=_steps("a", 500)))
        )
        for _ in range(5):  # let it write a few of its rows
            await asyncio.sleep(0.001)
        assert not job.done()
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
        await store.save(Changes(add_steps=_steps("b", 1)))  # waits for the first unit
        counts = [s.asset_id for s in await store.steps()]
        assert counts.count("a") == 500 and counts.count("b") == 1
        _, total = await store.list_assets("t", ListQuery(count=True))
        assert total == 200
    finally:
        await store.close()


async def test_reads_never_see_another_coroutines_uncommitted_writes(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "db.sqlite3")
    try:
        seen: list[int] = []

        async def reader() -> None:
            for _ in range(50):
                _, total = await store.list_assets("t", ListQuery(count=True))
                seen.append(total or 0)
                await asyncio.sleep(0)

        await asyncio.gather(store.save(Changes(assets=_assets("big", 40))), reader())
        assert set(seen) <= {0, 40}
    finally:
        await store.close()


def _asset_doc(asset_id: str, phase: str) -> dict[str, object]:
    return {
        "id": asset_id,
        "playbackId": asset_id[:16],
        "name": "clip",
        "source": {"type": "directUpload"},
        "createdAt": 1,
        "status": {"phase": phase, "updatedAt": 1},
    }


async def test_assets_with_an_incomplete_plan_are_found_for_repair(tmp_path: Path) -> None:
    """An older version could commit part of a plan (progress steps, no `ready`)."""
    path = tmp_path / "db.sqlite3"
    store = await Store.open(path)
    task = {
        "id": "task-1",
        "type": "upload",
        "createdAt": 1,
        "outputAssetId": "asset-incomplete-1",
        "status": {"phase": "running", "updatedAt": 1},
    }
    try:
        await store.save(
            Changes(
                assets=[
                    AssetRow("t", _asset_doc("asset-incomplete-1", "processing"), "media/a/source"),
                    AssetRow("t", _asset_doc("asset-complete-222", "processing"), "media/b/source"),
                ],
                tasks=[TaskRow("t", task)],
                add_steps=[
                    Step("t", 5, "asset-complete-222", "task-2", StepKind.READY),
                ],
            )
        )
    finally:
        await store.close()
    # The half plan an older version left: a progress step and nothing after it.
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO steps (tenant, due_ms, asset_id, task_id, kind, data) VALUES "
        "('t', 3, 'asset-incomplete-1', 'task-1', 'progress', ?)",
        (json.dumps({"progress": 0.5}),),
    )
    db.commit()
    db.close()
    store = await Store.open(path)
    try:
        stalled = await store.arrivals_in_flight()
        assert [r.doc["id"] for r in stalled] == ["asset-incomplete-1"]
    finally:
        await store.close()


async def test_restart_finishes_an_asset_left_processing_by_a_cut_plan(
    aiohttp_client, tmp_path: Path, auth: dict[str, str]
) -> None:
    """An asset whose `ready` step was never committed (the old interleaving bug) is
    processed again on start instead of staying `processing` forever."""
    data = tmp_path / "d"
    clock = ManualClock(start_ms=1_700_000_000_000)
    first = await aiohttp_client(create_app(Settings(data_dir=data, clock="manual"), clock=clock))
    created = await upload(first, auth, SAMPLE_MP4)
    asset_id = created["asset"]["id"]
    await advance(first, auth, 1)  # started, part way through processing
    assert (await get_json(first, f"/api/asset/{asset_id}", auth))["status"]["phase"] == (
        "processing"
    )
    await first.close()
    db = sqlite3.connect(data / "emulator.sqlite3")
    db.execute("DELETE FROM steps WHERE asset_id = ? AND kind = 'ready'", (asset_id,))
    db.commit()
    db.close()

    second = await aiohttp_client(create_app(Settings(data_dir=data, clock="manual"), clock=clock))
    await advance(second, auth, 10)
    asset = await get_json(second, f"/api/asset/{asset_id}", auth)
    assert asset["status"]["phase"] == "ready"
    assert asset["size"] == SAMPLE_MP4.stat().st_size
    task = await get_json(second, f"/api/task/{created['task']['id']}", auth)
    assert task["status"]["phase"] == "completed"


async def test_concurrent_uploads_and_lists_all_become_ready(
    aiohttp_client, tmp_path: Path, auth: dict[str, str]
) -> None:
    """The shape of the load that left assets stuck: many uploads at once beside list
    reads, then time moves; every asset and task must end ready and completed."""
    clock = ManualClock(start_ms=1_700_000_000_000)
    settings = Settings(data_dir=tmp_path / "d", clock="manual", scenario="instant")
    client = await aiohttp_client(create_app(settings, clock=clock))
    body = SAMPLE_MP4.read_bytes()

    async def one(n: int) -> Any:
        created = await create_upload(client, auth, f"clip-{n}")
        put = await client.put(path_of(created["url"]), data=body)
        assert put.status == 200, await put.text()
        return created

    async def lists() -> None:
        for _ in range(40):
            resp = await client.get("/api/asset?limit=100", headers=auth)
            assert resp.status == 200
            await resp.read()

    results = await asyncio.gather(*(one(n) for n in range(60)), lists(), lists())
    await advance(client, auth, 5)
    assets = await get_json(client, "/api/asset?limit=1000", auth)
    assert len(assets) == 60
    assert {a["status"]["phase"] for a in assets} == {"ready"}
    assert {a["size"] for a in assets} == {len(body)}
    for created in results[:60]:
        task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
        assert task["status"]["phase"] == "completed"


async def test_a_full_disk_spends_the_reserve_then_answers_insufficient_storage(
    tmp_path: Path,
) -> None:
    reserve = DiskReserve(tmp_path / "reserve", size=4096)
    assert reserve.ensure() and (tmp_path / "reserve").stat().st_size == 4096
    store = await Store.open(tmp_path / "db.sqlite3", reserve)
    calls = 0

    async def full_once(db: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("database or disk is full")
        await db.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        return "done"

    async def always_full(db: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    try:
        assert await store._transact(full_once) == "done"  # retried once the reserve went
        assert calls == 2 and not (tmp_path / "reserve").exists()
        assert await store.get_meta("k") == "v"
        with pytest.raises(InsufficientStorage):  # nothing left to release
            await store._transact(always_full)
        assert reserve.ensure()  # space is back: the reserve is put back
    finally:
        await store.close()
