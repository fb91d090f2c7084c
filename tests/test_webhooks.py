"""Webhooks: event sequences at a real local receiver, signatures, retries on the manual
clock, delivery faults, and the management API (fact sheet §4, §7)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import NOT_MEDIA, SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json, upload

ASSET_AND_TASK_EVENTS = [
    "asset.created",
    "asset.updated",
    "asset.ready",
    "asset.failed",
    "asset.deleted",
    "task.spawned",
    "task.updated",
    "task.completed",
    "task.failed",
]
SECRET = "s3cret-for-tests"


@dataclass
class Delivery:
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    @property
    def event(self) -> str:
        return str(self.body["event"])

    def signature_ok(self, secret: str) -> bool:
        """Check Livepeer-Signature the way a receiver would, independently of the emulator."""
        parts = dict(p.split("=", 1) for p in self.headers["Livepeer-Signature"].split(","))
        expected = hmac.new(secret.encode(), self.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(parts["v1"], expected) and int(parts["t"]) == int(
            self.body["timestamp"]
        )


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records every POST and answers as scripted."""

    server: TestServer
    got: list[Delivery] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer, then 200
    arrival: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` deliveries arrived (for the real clock, where nothing answers
        "done"); a signal, not a sleep."""
        # asyncio.wait_for, not asyncio.timeout: the suite runs on Python 3.10.
        await asyncio.wait_for(self._until(count), timeout)

    async def _until(self, count: int) -> None:
        while len(self.got) < count:
            self.arrival.clear()
            await self.arrival.wait()

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    @property
    def events(self) -> list[str]:
        return [d.event for d in self.got]


@pytest.fixture
async def receiver(aiohttp_server) -> Receiver:  # type: ignore[no-untyped-def]
    app = web.Application()
    state: dict[str, Receiver] = {}

    async def hook(request: web.Request) -> web.Response:
        rec = state["r"]
        rec.got.append(Delivery(dict(request.headers), await request.read()))
        rec.arrival.set()
        status = rec.answers.pop(0) if rec.answers else 200
        return web.Response(status=status, text="ok" if status < 300 else "nope")

    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    state["r"] = Receiver(server)
    return state["r"]


async def make_webhook(
    client: TestClient,
    auth: dict[str, str],
    url: str,
    events: list[str] | None = None,
    **extra: Any,
) -> Any:
    body = {"name": "hook", "url": url, "events": events or ASSET_AND_TASK_EVENTS, **extra}
    resp = await client.post("/api/webhook", json=body, headers=auth)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def check_common(got: list[Delivery], webhook_id: str) -> None:
    for d in got:
        assert d.headers["Content-Type"] == "application/json"
        assert d.headers["User-Agent"] == "livepeer.studio"
        assert d.signature_ok(SECRET), d.headers
        body = d.body
        assert set(body) == {"id", "webhookId", "createdAt", "timestamp", "event", "payload"}
        assert body["webhookId"] == webhook_id
        assert body["createdAt"] <= body["timestamp"]
    assert len({d.body["id"] for d in got}) == len(got)  # one id per event


def split_progress(
    events: list[str], head: int, tail: int
) -> tuple[list[str], list[str], list[str]]:
    return events[:head], events[head : len(events) - tail], events[len(events) - tail :]


async def test_successful_upload_sends_the_whole_sequence_in_order(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    hook = await make_webhook(client, auth, receiver.url, sharedSecret=SECRET)
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 60)
    asset_id = created["asset"]["id"]
    asset = await get_json(client, f"/api/asset/{asset_id}", auth)
    assert asset["status"]["phase"] == "ready"

    head, middle, tail = split_progress(receiver.events, 3, 4)
    # Upload complete: the task is scheduled, but Studio writes no asset.updated for it.
    assert head == ["asset.created", "task.spawned", "task.updated"]
    # Progress reports write the task first (task.ts /:id/status); the source-playback
    # report writes the asset first (scheduler.ts processTaskResultPartial).
    pairs = [middle[i : i + 2] for i in range(0, len(middle), 2)]
    assert pairs and all(
        p in (["task.updated", "asset.updated"], ["asset.updated", "task.updated"]) for p in pairs
    )
    # Completion writes the asset before the task (scheduler.ts processTaskEvent).
    assert tail == ["asset.updated", "asset.ready", "task.updated", "task.completed"]
    check_common(receiver.got, hook["id"])

    bodies = [d.body for d in receiver.got]
    created_snapshot = bodies[0]["payload"]["asset"]
    assert created_snapshot["id"] == asset_id
    assert created_snapshot["snapshot"]["status"]["phase"] == "uploading"
    spawned = bodies[1]["payload"]["task"]
    assert spawned["id"] == created["task"]["id"] and spawned["type"] == "upload"
    assert spawned["snapshot"]["status"]["phase"] == "pending"
    assert bodies[2]["payload"]["task"]["snapshot"]["status"]["phase"] == "waiting"
    progress = [
        b["payload"]["asset"]["snapshot"]["status"] for b in bodies[3:-4] if "asset" in b["payload"]
    ]
    assert [p["phase"] for p in progress] == ["processing"] * len(progress)
    assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)
    completed = bodies[-1]["payload"]
    assert completed["success"] is True
    assert completed["task"]["snapshot"]["status"]["phase"] == "completed"
    ready = bodies[-3]["payload"]["asset"]["snapshot"]
    assert ready["status"]["phase"] == "ready"
    assert ready["videoSpec"]["tracks"]  # snapshots keep the tracks the API strips
    assert ready["playbackUrl"] == asset["playbackUrl"]
    # Emission times follow the clock the transitions were stamped with.
    assert bodies[-3]["createdAt"] == asset["status"]["updatedAt"]


async def test_failed_upload_sends_the_failure_sequence(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    hook = await make_webhook(client, auth, receiver.url, sharedSecret=SECRET)
    created = await upload(client, auth, NOT_MEDIA)
    await advance(client, auth, 60)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "failed"
    assert receiver.events == [
        "asset.created",
        "task.spawned",
        "task.updated",
        "task.updated",
        "asset.updated",
        "task.updated",
        "task.failed",
        "asset.updated",
        "asset.failed",
    ]
    check_common(receiver.got, hook["id"])
    failed_task = receiver.got[6].body["payload"]
    assert failed_task["success"] is False
    assert failed_task["task"]["snapshot"]["status"]["errorMessage"]
    failed = receiver.got[-1].body["payload"]["asset"]["snapshot"]
    assert failed["status"] == asset["status"]


async def test_patch_and_delete_send_updated_and_deleted(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 60)
    await make_webhook(client, auth, receiver.url, ["asset.updated", "asset.deleted"])
    asset_id = created["asset"]["id"]
    resp = await client.patch(f"/api/asset/{asset_id}", json={"name": "renamed"}, headers=auth)
    assert resp.status == 200
    resp = await client.delete(f"/api/asset/{asset_id}", headers=auth)
    assert resp.status == 204
    await advance(client, auth, 0)
    assert receiver.events == ["asset.updated", "asset.deleted"]
    assert receiver.got[0].body["payload"]["asset"]["snapshot"]["name"] == "renamed"
    deleted = receiver.got[1].body["payload"]["asset"]["snapshot"]
    assert deleted["status"]["phase"] == "ready" and "deleted" not in deleted  # before deletion


async def test_only_subscribed_events_of_the_own_tenant_are_sent(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await make_webhook(client, auth, receiver.url, ["asset.ready"])
    await make_webhook(client, {"Authorization": "Bearer someone-else"}, receiver.url)
    await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 60)
    assert receiver.events == ["asset.ready"]


async def test_url_import_sends_spawned_and_updated(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await make_webhook(
        client, auth, receiver.url, ["asset.created", "task.spawned", "task.updated"]
    )
    resp = await client.post(
        "/api/asset/upload/url",
        json={"name": "imported", "url": "http://127.0.0.1:1/nothing.mp4"},
        headers=auth,
    )
    assert resp.status == 201
    await advance(client, auth, 0)
    assert receiver.events[:3] == ["asset.created", "task.spawned", "task.updated"]


# -- retries -----------------------------------------------------------------------------


async def test_retries_on_5xx_walk_the_manual_clock(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    hook = await make_webhook(client, auth, receiver.url, ["asset.created"], sharedSecret=SECRET)
    start = (await get_json(client, "/_emulator/clock", auth))["now"]
    receiver.answers = [500, 503]
    await create_upload(client, auth)
    await advance(client, auth, 0)
    assert len(receiver.got) == 1  # the first attempt went out at once
    await advance(client, auth, 3600)  # one call: each retry still goes at its own time
    sent_at = [d.body["timestamp"] - start for d in receiver.got]
    assert sent_at == [0, 5000, 15000]
    assert len({d.body["id"] for d in receiver.got}) == 1  # the same event every time
    assert all(d.signature_ok(SECRET) for d in receiver.got)

    log = await get_json(client, f"/api/webhook/{hook['id']}/log", auth)
    assert [entry["response"]["status"] for entry in log] == [200, 503, 500]  # newest first
    assert [entry["success"] for entry in log] == [True, False, False]
    assert [entry["createdAt"] - start for entry in log] == [15000, 5000, 0]
    status = (await get_json(client, f"/api/webhook/{hook['id']}", auth))["status"]
    assert status["lastTriggeredAt"] == start + 15000
    assert status["lastFailure"] == {
        "timestamp": start + 5000,
        "error": "receiver answered 503",
        "statusCode": 503,
        "response": "nope",
    }


async def test_deliveries_say_when_a_failed_one_is_tried_next(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await make_webhook(client, auth, receiver.url, ["asset.created"])
    start = (await get_json(client, "/_emulator/clock", auth))["now"]
    receiver.answers = [500, 503]
    await create_upload(client, auth)
    await advance(client, auth, 0)

    async def attempts() -> list[tuple[int, bool, int]]:
        docs = await get_json(client, "/_emulator/webhooks/deliveries", auth)
        return [(d["attempt"], d["success"], d.get("nextAttemptAt", start) - start) for d in docs]

    # Emulator time of the retry (first backoff 5 s, then 10 s), on the latest attempt only.
    assert await attempts() == [(1, False, 5000)]
    await advance(client, auth, 5)
    assert await attempts() == [(2, False, 15000), (1, False, 0)]
    await advance(client, auth, 10)
    assert await attempts() == [(3, True, 0), (2, False, 0), (1, False, 0)]


async def test_4xx_is_not_retried(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await make_webhook(client, auth, receiver.url, ["asset.created"])
    receiver.answers = [404]
    await create_upload(client, auth)
    await advance(client, auth, 3600)
    assert len(receiver.got) == 1


async def test_a_dead_receiver_is_retried_and_slows_nothing(
    client: TestClient, auth: dict[str, str], unused_tcp_port: int
) -> None:
    hook = await make_webhook(
        client, auth, f"http://127.0.0.1:{unused_tcp_port}/", ["asset.created"]
    )
    start = (await get_json(client, "/_emulator/clock", auth))["now"]
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 60)  # processing runs as usual
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "ready"
    newest_first = await get_json(client, "/_emulator/webhooks/deliveries", auth)
    deliveries = newest_first[::-1]
    assert [d["createdAt"] - start for d in deliveries] == [0, 5000, 15000, 35000]
    assert all("response" not in d and d["error"] for d in deliveries)
    assert [d["attempt"] for d in deliveries] == [1, 2, 3, 4]
    assert {d["webhookId"] for d in deliveries} == {hook["id"]}


# -- delivery faults ---------------------------------------------------------------------


async def put_scenario(
    client: TestClient, auth: dict[str, str], rules: list[dict[str, Any]]
) -> None:
    scenario = {"name": "webhook-faults", "faults": rules}
    resp = await client.put("/_emulator/scenario", data=json.dumps(scenario), headers=auth)
    assert resp.status == 200, await resp.text()


async def test_duplicate_delivers_the_same_event_twice(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(
        client, auth, [{"match": {"event": "asset.created"}, "webhook": {"duplicate": True}}]
    )
    await make_webhook(client, auth, receiver.url, ["asset.created", "task.spawned"])
    await create_upload(client, auth)
    await advance(client, auth, 0)
    assert receiver.events == ["asset.created", "asset.created", "task.spawned"]
    assert receiver.got[0].raw != b"" and receiver.got[0].body["id"] == receiver.got[1].body["id"]


async def test_drop_never_delivers(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(client, auth, [{"match": {"event": "task.*"}, "webhook": {"drop": True}}])
    await make_webhook(client, auth, receiver.url)
    await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 3600)
    assert receiver.events and all(e.startswith("asset.") for e in receiver.events)
    assert receiver.events[-1] == "asset.ready"


async def test_delay_holds_a_delivery_on_the_clock(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(
        client, auth, [{"match": {"event": "asset.created"}, "webhook": {"delay": "30s"}}]
    )
    await make_webhook(client, auth, receiver.url, ["asset.created", "task.spawned"])
    start = (await get_json(client, "/_emulator/clock", auth))["now"]
    await create_upload(client, auth)
    await advance(client, auth, 29)
    assert receiver.events == ["task.spawned"]
    await advance(client, auth, 1)
    assert receiver.events == ["task.spawned", "asset.created"]
    assert receiver.got[1].body["timestamp"] - start == 30_000
    assert receiver.got[1].body["createdAt"] == start  # emitted then, delivered later


async def test_reorder_holds_an_event_until_the_next_one_has_gone(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(
        client, auth, [{"match": {"event": "asset.created"}, "webhook": {"reorder": True}}]
    )
    await make_webhook(client, auth, receiver.url, ["asset.created", "task.spawned"])
    await create_upload(client, auth)
    await advance(client, auth, 0)
    assert receiver.events == ["task.spawned", "asset.created"]


async def test_bad_signature_fails_verification(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(
        client,
        auth,
        [
            {
                "match": {"event": "task.spawned", "webhook_url": "http://127.0.0.1:*"},
                "webhook": {"bad_signature": True},
            }
        ],
    )
    await make_webhook(
        client, auth, receiver.url, ["asset.created", "task.spawned"], sharedSecret=SECRET
    )
    await create_upload(client, auth)
    await advance(client, auth, 0)
    assert receiver.events == ["asset.created", "task.spawned"]
    assert receiver.got[0].signature_ok(SECRET)
    assert not receiver.got[1].signature_ok(SECRET)


async def test_fault_rules_match_the_webhook_url(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(
        client, auth, [{"match": {"webhook_url": "https://elsewhere/*"}, "webhook": {"drop": True}}]
    )
    await make_webhook(client, auth, receiver.url, ["asset.created"])
    await create_upload(client, auth)
    await advance(client, auth, 0)
    assert receiver.events == ["asset.created"]


def test_webhook_rules_are_checked_when_a_scenario_is_read() -> None:
    from emulator.models import WebhookFault
    from emulator.scenarios import ScenarioError, parse

    good = parse(
        "faults:\n  - match: {event: 'asset.*', webhook_url: 'http://*', times: 1}\n"
        "    webhook: {delay: 2s}\n",
        source="ok.yaml",
        default_name="ok",
    )
    (rule,) = good.faults
    assert rule.kind == "webhook" and rule.webhook == WebhookFault("delay", 2000)
    assert rule.match.event == "asset.*" and rule.match.times == 1

    bad = (
        "faults:\n"
        "  - match: {event: 'asset.*', path: /api/*}\n"
        "    webhook: {explode: true}\n"
        "  - webhook: {duplicate: 'yes'}\n"
        "  - match: {event: asset.ready}\n"
        "    respond: {status: 500}\n"
        "  - webhook: {drop: true}\n"
        "    processing: {fail_times: 1}\n"
    )
    with pytest.raises(ScenarioError) as caught:
        parse(bad, source="bad.yaml", default_name="bad")
    messages = caught.value.messages
    assert any(m.startswith("bad.yaml:3: unknown webhook fault 'explode'") for m in messages)
    assert any(
        "bad.yaml:2: faults[0].match.path only applies to HTTP faults" in m for m in messages
    )
    assert any("bad.yaml:4: faults[1].webhook.duplicate must be true" in m for m in messages)
    assert any("faults[2].match.event only applies to webhook faults" in m for m in messages)
    assert any("faults[3] mixes processing and webhook" in m for m in messages)


async def test_a_retried_processing_step_sends_task_updated_only(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    await put_scenario(
        client, auth, [{"match": {"asset_name": "*"}, "processing": {"fail_times": 1}}]
    )
    await make_webhook(client, auth, receiver.url)
    await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 600)
    bodies = [d.body for d in receiver.got]
    retried = [
        b
        for b in bodies
        if b["event"] == "task.updated"
        and b["payload"]["task"]["snapshot"]["status"].get("retries") == 1
        and b["payload"]["task"]["snapshot"]["status"]["phase"] == "waiting"
    ]
    assert len(retried) == 1
    at = bodies.index(retried[0])
    assert bodies[at + 1]["event"] == "task.updated"  # the task restarts; no asset write
    assert bodies[at - 1]["event"] == "asset.updated"  # the last report before the retry
    assert receiver.events[-1] == "task.completed" and "task.failed" not in receiver.events


async def test_a_slow_receiver_holds_up_neither_the_api_nor_other_webhooks(
    client: TestClient, auth: dict[str, str], receiver: Receiver, aiohttp_server: Any
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def stuck(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/", stuck)
    slow = await aiohttp_server(app, host="127.0.0.1")
    await make_webhook(client, auth, str(slow.make_url("/")), ["asset.created"])
    await make_webhook(client, auth, receiver.url, ["asset.created", "task.updated"])
    created = await upload(client, auth, SAMPLE_MP4)  # answered while a delivery hangs
    await asyncio.wait_for(arrived.wait(), timeout=10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "waiting"
    release.set()
    await advance(client, auth, 0)
    assert receiver.events == ["asset.created", "task.updated"]
    attempts = await get_json(client, "/_emulator/webhooks/deliveries", auth)
    assert sorted(a["success"] for a in attempts) == [True, True, True]


async def test_real_clock_retries_go_out_when_due(
    aiohttp_client: Any, tmp_path: Any, auth: dict[str, str], receiver: Receiver
) -> None:
    from emulator.app import create_app
    from emulator.settings import Settings
    from tests.test_scheduler import FastForwardClock

    clock = FastForwardClock()
    client = await aiohttp_client(create_app(Settings(data_dir=tmp_path / "d"), clock=clock))
    await make_webhook(client, auth, receiver.url, ["asset.created"])
    receiver.answers = [500, 502]
    start = clock.now
    await create_upload(client, auth)
    await receiver.wait_for(3)
    assert [d.body["timestamp"] - start for d in receiver.got] == [0, 5000, 15000]


async def test_the_shipped_flaky_webhooks_scenario(
    client: TestClient, auth: dict[str, str], receiver: Receiver
) -> None:
    resp = await client.put("/_emulator/scenario", json={"name": "flaky-webhooks"}, headers=auth)
    assert resp.status == 200, await resp.text()
    await make_webhook(client, auth, receiver.url)
    await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 9)
    events = receiver.events
    assert events.index("task.spawned") < events.index("asset.created")
    assert events.count("asset.ready") == 2 and events[-4:-2] == ["asset.ready"] * 2
    assert "task.updated" in events  # only the first one is late ...
    before = len(receiver.got)
    await advance(client, auth, 1)
    assert receiver.events[before:] == ["task.updated"]  # ... and arrives 10 s later
    late = receiver.got[-1].body
    assert late["payload"]["task"]["snapshot"]["status"]["phase"] == "waiting"
