"""The README's pytest snippet for webhook deliveries, run with the plugin's fixture; and
pending retries surviving a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.settings import Settings
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, create_upload, get_json
from tests.test_docs import code_blocks


def test_readme_snippet_reads_deliveries_through_the_fixture(
    livepeer_emulator: Any, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/hook"  # nobody listens: attempts fail
    status, hook = livepeer_emulator.request(
        "POST", "/api/webhook", {"name": "t", "url": url, "events": ["asset.ready"]}
    )
    assert status == 201, hook
    asset = livepeer_emulator.upload(SAMPLE_MP4)
    livepeer_emulator.advance(60)
    snippet = next(b for b in code_blocks("python") if "webhooks/deliveries" in b)
    scope: dict[str, Any] = {"livepeer_emulator": livepeer_emulator}
    exec(snippet, scope)
    assert scope["status"] == 200
    attempts = scope["attempts"]
    assert [(a["assetId"], a["event"], a["webhookId"]) for a in attempts] == [
        (asset["id"], "asset.ready", hook["id"])
    ] * len(attempts)
    assert attempts and all(a["success"] is False and a["error"] for a in attempts)


async def test_pending_retries_survive_a_restart(
    aiohttp_client: Any, tmp_path: Path, auth: dict[str, str], unused_tcp_port: int
) -> None:
    settings = Settings(data_dir=tmp_path / "data", clock="manual")
    first = await aiohttp_client(create_app(settings, clock=ManualClock(1_700_000_000_000)))
    resp = await first.post(
        "/api/webhook",
        json={
            "name": "t",
            "url": f"http://127.0.0.1:{unused_tcp_port}/",
            "events": ["asset.created"],
        },
        headers=auth,
    )
    assert resp.status == 201
    await create_upload(first, auth)
    await advance(first, auth, 0)
    await first.close()  # the server stops with a retry due in 5 s

    second = await aiohttp_client(create_app(settings, clock=ManualClock(1_700_000_000_000)))
    await advance(second, auth, 5)
    attempts = (await get_json(second, "/_emulator/webhooks/deliveries", auth))[::-1]
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert attempts[1]["createdAt"] - attempts[0]["createdAt"] == 5000
    assert attempts[0]["eventId"] == attempts[1]["eventId"]
