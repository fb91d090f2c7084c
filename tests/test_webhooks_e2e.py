"""End to end: a real `serve`, the README's receiver as a subprocess, the official Python
SDK for the upload, the `webhooks trigger` CLI, and a delivery fault from a scenario."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from livepeer import Livepeer

from tests.conftest import SAMPLE_MP4
from tests.serving import emulator_command
from tests.test_docs import code_blocks

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret"


class ReadmeReceiver:
    """The README's receiver, running: it prints `EVENT ID` per verified new event."""

    def __init__(self, workdir: Path, port: int) -> None:
        script = next(b for b in code_blocks("python") if "Livepeer-Signature" in b)
        path = workdir / "receiver.py"
        path.write_text(script)
        env = {**os.environ, "WEBHOOK_SECRET": SECRET, "PORT": str(port)}
        self.proc = subprocess.Popen(
            [sys.executable, str(path)], stdout=subprocess.PIPE, text=True, env=env
        )
        self._printed: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        assert self.lines(1) == ["listening"]
        self.url = f"http://127.0.0.1:{port}/hook"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._printed.put(line.strip())

    def lines(self, count: int, timeout: float = 10.0) -> list[str]:
        """The next `count` lines it printed (they are there once advance has answered)."""
        out = []
        for _ in range(count):
            try:
                out.append(self._printed.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(f"the receiver printed only {out}") from None
        return out

    def printed_nothing_more(self) -> bool:
        return self._printed.empty()


@pytest.fixture
def receiver(tmp_path: Path, unused_tcp_port: int) -> Iterator[ReadmeReceiver]:
    rec = ReadmeReceiver(tmp_path, unused_tcp_port)
    yield rec
    rec.proc.kill()
    rec.proc.wait()
    rec.reader.join(10)  # it reaches the end of the dead process's output ...
    assert rec.proc.stdout is not None
    rec.proc.stdout.close()  # ... so the pipe can be closed under it


def trigger(root: str, key: str, event: str, asset_id: str) -> subprocess.CompletedProcess[str]:
    """`livepeer-emulator webhooks trigger` as a user runs it."""
    command = [*emulator_command(), "webhooks", "trigger", event, "--asset", asset_id]
    return subprocess.run(
        [*command, "--api-key", key, "--url", root],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_readme_receiver_gets_verified_events_from_a_real_server(
    serve, key: str, receiver: ReadmeReceiver
) -> None:
    server = serve("--clock", "manual")
    status, hook = server.request(
        "POST",
        "/api/webhook",
        {
            "name": "e2e",
            "url": receiver.url,
            "events": ["asset.created", "asset.ready"],
            "sharedSecret": SECRET,
        },
        key,
    )
    assert status == 201, hook

    # Python SDK 0.3.0 expects 200: Studio's 201 falls to its error branch, where the
    # webhook document fails to parse as an error body ...
    sdk = Livepeer(api_key=key, server_url=server.api_url)
    with pytest.raises(pydantic.ValidationError):
        sdk.webhook.create(request={"name": "sdk", "url": receiver.url, "events": ["asset.ready"]})
    # ... though the server did create it; the SDK reads webhooks fine.
    listed = {w.name: w.id for w in sdk.webhook.get_all().data}
    assert listed.keys() == {"e2e", "sdk"} and listed["e2e"] == hook["id"]
    status, _ = server.request("DELETE", f"/api/webhook/{listed['sdk']}", None, key)
    assert status == 204

    created = sdk.asset.create(request={"name": "e2e clip"}).data
    asset_id = created.asset.id
    put = urllib.request.Request(created.url, data=SAMPLE_MP4.read_bytes(), method="PUT")
    with urllib.request.urlopen(put, timeout=30) as resp:
        assert resp.status == 200
    server.advance(60, key)
    assert receiver.lines(2) == [f"asset.created {asset_id}", f"asset.ready {asset_id}"]

    # A delivery fault from a scenario: the receiver rejects the bad signature (401), and
    # a 4xx is not retried.
    scenario = {"faults": [{"match": {"event": "asset.ready"}, "webhook": {"bad_signature": True}}]}
    status, body = server.request("PUT", "/_emulator/scenario", scenario, key)
    assert status == 200, body
    result = trigger(server.root, key, "asset.ready", asset_id)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"POST {receiver.url} -> 401" in result.stdout
    server.advance(3600, key)
    assert receiver.printed_nothing_more()

    status, _ = server.request("DELETE", "/_emulator/scenario", None, key)
    assert status == 200
    result = trigger(server.root, key, "asset.ready", asset_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"POST {receiver.url} -> 204" in result.stdout
    assert receiver.lines(1) == [f"asset.ready {asset_id}"]

    status, attempts = server.request(
        "GET", f"/_emulator/webhooks/deliveries?asset={asset_id}&event=asset.ready", None, key
    )
    assert status == 200
    assert [(a["response"]["status"], a.get("fault")) for a in attempts] == [
        (204, None),
        (401, "bad_signature"),
        (204, None),
    ]
