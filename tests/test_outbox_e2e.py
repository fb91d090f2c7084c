"""Webhook events survive any stop (issue 11.3): an event is stored in the same
transaction as the change that raised it, so a server killed right after answering still
delivers it after a restart, with the same event id."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps every event body it was sent."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_events_raised_just_before_a_stop_are_delivered_after_restart(
    serve, tmp_path, receiver: Receiver, sig: int
) -> None:
    data = tmp_path / "data"
    server = serve("--clock", "manual", data_dir=data)
    key = "outbox-tenant"
    status, hook = server.request(
        "POST",
        "/api/webhook",
        {"name": "h", "url": receiver.url, "events": ["asset.created"]},
        key,
    )
    assert status == 201, hook

    def create(n: int) -> str:
        status, body = server.request("POST", "/api/asset/request-upload", {"name": f"a{n}"}, key)
        assert status == 200, body
        return str(body["asset"]["id"])

    with ThreadPoolExecutor(8) as pool:
        created = set(pool.map(create, range(120)))
    server.stop(sig)  # at once: most events are not delivered yet

    again = serve("--clock", "manual", data_dir=data)
    # Moving time by nothing waits for every due delivery to be attempted.
    again.advance(0, key)
    by_asset: dict[str, set[str]] = {}
    for event in receiver.received:
        assert event["event"] == "asset.created"
        by_asset.setdefault(event["payload"]["asset"]["id"], set()).add(event["id"])
    assert set(by_asset) == created
    # At least once, and a repeat carries the same event id.
    assert all(len(ids) == 1 for ids in by_asset.values())
