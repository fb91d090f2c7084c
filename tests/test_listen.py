"""`livepeer-emulator listen --forward-to URL` and the stream it reads,
GET /_emulator/events/stream: end to end with a real server, the README's receiver and the
README's command; in process, the stream's key rules, filters, resumption and bounds."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from emulator import live_events
from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.live_events import LiveEvents
from emulator.models import Event
from emulator.routes.events import LIVE_EVENTS
from emulator.settings import Settings
from tests.helpers import create_upload
from tests.serving import ServerProcess, emulator_command
from tests.test_docs import code_blocks
from tests.test_webhooks_e2e import ReadmeReceiver

SECRET = "e2e-secret"
STREAM = "/_emulator/events/stream"
ASSET = {"id": "a", "playbackId": "p", "status": {"phase": "waiting", "updatedAt": 1}}


# -- end to end: serve + listen + the README's receiver ----------------------------------


class Listener:
    """`livepeer-emulator listen` as a user runs it (the README's command line)."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [*emulator_command(), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._printed: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._printed.put(line.rstrip("\n"))

    def until(self, pattern: str, timeout: float = 20.0) -> list[str]:
        """Lines printed up to and including the first that matches `pattern`."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._printed.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r}; printed {seen}") from None
            seen.append(line)
            if re.search(pattern, line):
                return seen

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(10)
        self.reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


@pytest.fixture
def receiver(tmp_path: Path, unused_tcp_port_factory: Any) -> Iterator[ReadmeReceiver]:
    rec = ReadmeReceiver(tmp_path, unused_tcp_port_factory())
    yield rec
    rec.proc.kill()
    rec.proc.wait()
    rec.reader.join(10)
    assert rec.proc.stdout is not None
    rec.proc.stdout.close()


def readme_command(receiver_url: str, key: str, root: str) -> list[str]:
    """The README's `listen` line, with its placeholders filled in."""
    block = next(b for b in code_blocks("sh") if "livepeer-emulator listen" in b)
    words = block.replace("\\\n", " ").replace("$KEY", key).split()
    assert words[:2] == ["livepeer-emulator", "listen"], words
    swap = {"http://127.0.0.1:8000/hook": receiver_url, "http://127.0.0.1:3000": root}
    return [swap.get(w, w) for w in words[1:]]


@pytest.mark.e2e
def test_listen_forwards_signed_events_and_survives_a_server_restart(
    tmp_path: Path, key: str, receiver: ReadmeReceiver, unused_tcp_port_factory: Any
) -> None:
    port = unused_tcp_port_factory()
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir, "--clock", "manual", "--port", str(port)).start()
    args = readme_command(receiver.url, key, server.root)
    assert "--secret" in args
    args[args.index("--secret") + 1] = SECRET  # the README's receiver runs with this one
    listener = Listener(args)
    try:
        printed = listener.until(r"^Ready! ")
        assert printed[0] == f"Your webhook signing secret is {SECRET} " + (
            "(verify Livepeer-Signature with it)"
        )
        assert printed[-1] == f"Ready! Forwarding all events to {receiver.url} (Ctrl-C to stop)"

        status, created = server.request("POST", "/api/asset/request-upload", {"name": "a"}, key)
        assert status == 200, created
        asset_id, task_id = created["asset"]["id"], created["task"]["id"]
        # The receiver prints only events whose signature it verified.
        assert receiver.lines(2) == [f"asset.created {asset_id}", f"task.spawned {task_id}"]
        line = listener.until(r"task\.spawned")[-1]
        assert re.fullmatch(
            rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d  task\.spawned +{asset_id}  -> 204 No Content "
            r"\(\d+ ms\)",
            line,
        ), line
        # Nothing registered for it.
        assert server.request("GET", "/api/webhook", None, key) == (200, [])

        # The server stops promptly with the stream open, and listen says so and retries.
        code, took = server.stop()
        assert code == 0 and took < 2.0, (code, took)
        assert "Lost the server at" in listener.until(r"retrying in")[-1]

        server = ServerProcess(data_dir, "--clock", "manual", "--port", str(port)).start()
        resumed = listener.until(r"^Reconnected ")[-1]
        assert re.search(r"resuming after event \d+$", resumed), resumed
        status, second = server.request("POST", "/api/asset/request-upload", {"name": "b"}, key)
        assert status == 200, second
        assert receiver.lines(2) == [
            f"asset.created {second['asset']['id']}",
            f"task.spawned {second['task']['id']}",
        ]
    finally:
        code = listener.stop()
        server.stop()
    assert code == 0
    assert receiver.printed_nothing_more()


@pytest.mark.e2e
def test_listen_refuses_a_key_the_server_does_not_accept(serve, unused_tcp_port: int) -> None:
    server = serve("--api-key", "good-key")
    target = f"http://127.0.0.1:{unused_tcp_port}/"
    listener = Listener(
        ["listen", "--forward-to", target, "--url", server.root, "--api-key", "bad-key"]
    )
    try:
        assert "no token bad-key found" in listener.until(r"^Error: ")[-1]
        assert listener.proc.wait(10) == 1  # no retry: another try gets the same answer
    finally:
        listener.stop()


@pytest.mark.e2e
def test_listen_says_when_the_server_cannot_be_reached_and_stops_on_sigterm(
    unused_tcp_port_factory: Any,
) -> None:
    nobody = unused_tcp_port_factory()
    listener = Listener(
        ["listen", "--forward-to", "http://127.0.0.1:9/", "--url", f"http://127.0.0.1:{nobody}"]
    )
    try:
        first = listener.until(r"retrying in")[-1]
        assert first.startswith(f"Cannot reach the server at http://127.0.0.1:{nobody} ")
        assert first.endswith("retrying in 0.5 s"), first
        assert listener.until(r"retrying in")[-1].endswith("retrying in 1 s")  # backoff
    finally:
        code = listener.stop()
    assert code == 0


def readme_container_command(port: int, key: str, receiver_url: str) -> list[str]:
    """The README's `listen` line for a server in a container ("Use in CI")."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    ci = readme[readme.index("## Use in CI") :]
    found = re.search(r"`livepeer-emulator (listen --url http://127\.0\.0\.1:3000 [^`]+)`", ci)
    assert found, "the README's Use in CI says how to run listen against the container"
    swap = {
        "http://127.0.0.1:3000": f"http://127.0.0.1:{port}",
        "test-key": key,
        "http://127.0.0.1:8000/hook": receiver_url,
    }
    return [swap.get(w, w) for w in found.group(1).split()]


@pytest.mark.e2e
def test_listen_from_the_host_reaches_a_server_configured_as_the_container_is(
    tmp_path: Path, receiver: ReadmeReceiver
) -> None:
    # The image's configuration (Dockerfile ENV, README "Use in CI"): env vars only, every
    # interface, and an API key, so the control plane is locked. The host reaches the
    # published port on the loopback address, as `docker run -p` / `services: ports` give.
    server = ServerProcess(
        tmp_path / "data",
        env={"LIVEPEER_EMULATOR_HOST": "0.0.0.0", "LIVEPEER_EMULATOR_API_KEY": "ci-key"},
    ).start()
    listener = None
    try:
        assert "(listening on all interfaces)" in server.startup_line, server.startup_line
        port = int(server.root.rsplit(":", 1)[1])
        assert server.root == f"http://127.0.0.1:{port}"
        args = [*readme_container_command(port, "ci-key", receiver.url), "--secret", SECRET]
        listener = Listener(args)
        listener.until(r"^Ready! Forwarding all events to ")
        status, created = server.request(
            "POST", "/api/asset/request-upload", {"name": "a"}, "ci-key"
        )
        assert status == 200, created
        assert receiver.lines(2) == [
            f"asset.created {created['asset']['id']}",
            f"task.spawned {created['task']['id']}",
        ]
        assert re.search(
            r"task\.spawned .* -> 204 No Content", listener.until(r"task\.spawned")[-1]
        )
        # A reset of the key's tenant leaves the stream open; what follows still arrives.
        status, body = server.request("POST", "/_emulator/reset", {}, "ci-key")
        assert (status, body) == (200, {"reset": "tenant"})
        status, after = server.request("POST", "/api/asset/request-upload", {"name": "b"}, "ci-key")
        assert status == 200, after
        assert receiver.lines(2) == [
            f"asset.created {after['asset']['id']}",
            f"task.spawned {after['task']['id']}",
        ]
        # Nothing registered on the server by listen.
        assert server.request("GET", "/api/webhook", None, "ci-key") == (200, [])
    finally:
        code = listener.stop() if listener is not None else 0
        server.stop()
    assert code == 0
    assert receiver.printed_nothing_more()


# -- in process: the stream ------------------------------------------------------------


async def next_event(resp: ClientResponse, timeout: float = 10.0) -> tuple[str, str, str | None]:
    """(event, data, id) of the next server-sent event, heartbeats skipped."""
    name, data, event_id = "message", "", None
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), timeout)
        assert raw, "the stream ended"
        line = raw.decode().rstrip("\n")
        if line == "":
            if data:
                return name, data, event_id
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "data":
            data = value
        elif field == "id":
            event_id = value


async def open_stream(
    client: TestClient, auth: dict[str, str], query: str = "", **headers: str
) -> ClientResponse:
    resp = await client.get(STREAM + query, headers={**auth, **headers})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/event-stream"
    name, data, _ = await next_event(resp)
    assert name == "ready", (name, data)
    return resp


async def webhook_events(resp: ClientResponse, count: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < count:
        name, data, event_id = await next_event(resp)
        assert name == "webhook", (name, data)
        out.append({**json.loads(data), "seq": event_id})
    return out


async def test_a_key_streams_only_its_own_tenants_events(client: TestClient) -> None:
    alice, bob = {"Authorization": "Bearer alice"}, {"Authorization": "Bearer bob"}
    stream = await open_stream(client, alice)
    theirs = await create_upload(client, bob)
    mine = await create_upload(client, alice)
    got = await webhook_events(stream, 2)
    assert [(e["event"], e["payload"].get("asset", {}).get("id")) for e in got] == [
        ("asset.created", mine["asset"]["id"]),
        ("task.spawned", None),
    ]
    assert got[1]["payload"]["task"]["id"] == mine["task"]["id"]
    # A delivery's body, less the webhookId the forwarder adds.
    assert list(got[0]) == ["id", "createdAt", "timestamp", "event", "payload", "seq"]
    assert got[0]["createdAt"] == got[0]["timestamp"] == 1_700_000_000_000
    assert theirs["asset"]["id"] not in json.dumps(got)
    stream.close()


async def test_the_events_filter_and_bad_input(client: TestClient, auth: dict[str, str]) -> None:
    stream = await open_stream(client, auth, "?events=task.spawned")
    created = await create_upload(client, auth)
    [event] = await webhook_events(stream, 1)
    assert event["event"] == "task.spawned"
    assert event["payload"]["task"]["id"] == created["task"]["id"]
    stream.close()
    resp = await client.get(STREAM + "?events=asset.ready,nope", headers=auth)
    assert resp.status == 400
    assert (await resp.json())["errors"][0].startswith("events: unknown event 'nope'")
    resp = await client.get(STREAM, headers={**auth, "Last-Event-ID": "abc"})
    assert resp.status == 400


async def test_reconnecting_with_last_event_id_replays_what_was_missed(
    client: TestClient, auth: dict[str, str]
) -> None:
    stream = await open_stream(client, auth)
    await create_upload(client, auth, "one")
    first, _ = await webhook_events(stream, 2)
    stream.close()
    second = await create_upload(client, auth, "two")  # while nobody listens
    again = await open_stream(client, auth, **{"Last-Event-ID": first["seq"]})
    replayed = await webhook_events(again, 3)
    assert [e["event"] for e in replayed] == ["task.spawned", "asset.created", "task.spawned"]
    assert replayed[1]["payload"]["asset"]["id"] == second["asset"]["id"]
    assert [int(e["seq"]) for e in replayed] == sorted(int(e["seq"]) for e in replayed)
    again.close()


async def test_a_gap_before_what_the_server_kept_is_announced(
    client: TestClient, auth: dict[str, str]
) -> None:
    stream = await open_stream(client, auth)
    hub: LiveEvents = client.app[LIVE_EVENTS]
    tenant = next(iter(s.tenant for s in hub._streams))
    assert tenant is not None
    stream.close()
    # As after a restart: this run's first event is 50, and the client last saw 10.
    hub.publish([Event("e50", tenant, "asset.created", 1, ASSET, seq=50)])
    resp = await client.get(STREAM, headers={**auth, "Last-Event-ID": "10"})
    assert (await next_event(resp))[0] == "ready"
    name, data, _ = await next_event(resp)
    assert name == "missed" and "some may be missing" in json.loads(data)["message"]
    assert json.loads(data)["from"] == 50
    [event] = await webhook_events(resp, 1)
    assert (event["id"], event["seq"]) == ("e50", "50")
    resp.close()


async def test_a_slow_listener_loses_events_past_its_bound_and_is_told(
    client: TestClient, auth: dict[str, str]
) -> None:
    stream = await open_stream(client, auth)
    hub: LiveEvents = client.app[LIVE_EVENTS]
    tenant = next(iter(s.tenant for s in hub._streams))
    assert tenant is not None
    # More than it may hold, all at once: the handler has not run in between.
    extra = 5
    hub.publish(
        [
            Event(f"e{n}", tenant, "asset.updated", 1, ASSET, seq=n)
            for n in range(1, live_events.QUEUE + extra + 1)
        ]
    )
    name, data, _ = await next_event(stream)
    assert name == "dropped" and json.loads(data)["dropped"] == extra
    got = await webhook_events(stream, live_events.QUEUE)
    assert got[0]["id"] == "e1" and got[-1]["id"] == f"e{live_events.QUEUE}"
    stream.close()


def test_the_hub_keeps_a_bounded_history() -> None:
    hub = LiveEvents()
    events = [Event(f"e{n}", "t", "asset.created", 1, {}, seq=n) for n in range(1, 1601)]
    hub.publish(events)
    # Only the last KEEP are kept: a client that saw event 10 is told of the gap.
    stream = hub.subscribe("t", (), last_seq=10)
    assert len(stream.queue) == live_events.KEEP and stream.missed_before == 601
    assert stream.queue[0].id == "e601"
    hub.unsubscribe(stream)
    assert hub.open_streams == 0


async def test_streams_are_limited_and_leave_nothing_behind(
    client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_events, "MAX_STREAMS", 2)
    hub: LiveEvents = client.app[LIVE_EVENTS]
    streams = [await open_stream(client, auth) for _ in range(2)]
    resp = await client.get(STREAM, headers=auth)
    assert resp.status == 429
    assert (await resp.json())["errors"][0].startswith("at most 2 event streams")
    for stream in streams:
        stream.close()
    # A stream whose client left is dropped within a second (no heartbeat needed).
    for _ in range(100):
        if hub.open_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.open_streams == 0


@pytest.fixture
async def locked(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    settings = Settings(
        data_dir=tmp_path / "data", clock="manual", api_key=("alice", "bob"), admin_key=("root",)
    )
    app = create_app(settings, clock=ManualClock(start_ms=1_700_000_000_000))
    client: TestClient = await aiohttp_client(app)
    return client


async def test_the_stream_follows_the_control_planes_key_rules(locked: TestClient) -> None:
    alice, root = {"Authorization": "Bearer alice"}, {"Authorization": "Bearer root"}
    assert (await locked.get(STREAM)).status == 401
    assert (await locked.get(STREAM, headers={"Authorization": "Bearer eve"})).status == 401
    denied = await locked.get(STREAM + "?all=true", headers=alice)
    assert denied.status == 403
    assert "needs an admin key" in (await denied.json())["errors"][0]
    everyone = await open_stream(locked, root, "?all=true")
    created = await create_upload(locked, {"Authorization": "Bearer bob"})
    got = await webhook_events(everyone, 1)
    assert got[0]["payload"]["asset"]["id"] == created["asset"]["id"]
    everyone.close()


async def test_a_stopping_server_ends_open_streams_at_once(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", clock="manual"))
    client: TestClient = await aiohttp_client(app)
    stream = await open_stream(client, {"Authorization": "Bearer k"})
    began = time.monotonic()
    await client.server.close()
    assert time.monotonic() - began < 0.4  # not aiohttp's shutdown timeout
    assert await asyncio.wait_for(stream.content.read(), 5) == b""


async def test_a_reset_forgets_the_tenants_kept_events(
    client: TestClient, auth: dict[str, str]
) -> None:
    other = {"Authorization": "Bearer someone-else"}
    stream = await open_stream(client, auth)
    await create_upload(client, auth, "before")
    first, _ = await webhook_events(stream, 2)
    stream.close()
    theirs = await create_upload(client, other)
    reset = await client.post("/_emulator/reset", json={}, headers=auth)
    assert reset.status == 200
    after = await create_upload(client, auth, "after")
    # Resuming from before the reset: the pre-reset task.spawned is not replayed, and
    # nothing is said to be missing; only what came after the reset arrives.
    again = await open_stream(client, auth, **{"Last-Event-ID": first["seq"]})
    replayed = await webhook_events(again, 2)
    assert [e["event"] for e in replayed] == ["asset.created", "task.spawned"]
    assert replayed[0]["payload"]["asset"]["id"] == after["asset"]["id"]
    again.close()
    # Another tenant's kept events stay.
    kept = await open_stream(client, other, **{"Last-Event-ID": first["seq"]})
    [created, _] = await webhook_events(kept, 2)
    assert created["payload"]["asset"]["id"] == theirs["asset"]["id"]
    kept.close()


def test_a_reset_empties_what_open_streams_have_not_sent_yet() -> None:
    hub = LiveEvents()
    mine, everyone = hub.subscribe("t", ()), hub.subscribe(None, ())
    hub.publish(
        [
            Event("e1", "t", "asset.created", 1, ASSET, seq=1),
            Event("e2", "u", "asset.created", 1, ASSET, seq=2),
        ]
    )
    hub.forget("t")
    assert [e.id for e in mine.queue] == [] and [e.id for e in everyone.queue] == ["e2"]
    assert hub.open_streams == 2 and not mine.closed  # the streams stay open
    assert [e.id for e in hub.subscribe(None, (), last_seq=0).queue] == ["e2"]
    hub.forget(None)
    assert not everyone.queue and not hub.subscribe(None, (), last_seq=0).queue
