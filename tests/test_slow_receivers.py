"""A receiver that never answers cannot hold a manual-clock advance for long (issue
11.11): attempts time out after 2 s there, and one advance waits at most 5 s in all."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.helpers import advance, create_upload, get_json
from tests.test_webhooks import make_webhook


async def test_an_advance_is_not_held_by_a_receiver_that_never_answers(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    hang = asyncio.Event()  # never set

    async def silent(request: web.Request) -> web.Response:
        await hang.wait()
        return web.Response()

    app = web.Application()
    app.router.add_post("/", silent)
    receiver = await aiohttp_server(app, host="127.0.0.1")
    await make_webhook(client, auth, str(receiver.make_url("/")), ["asset.created"])
    await create_upload(client, auth)

    began = time.monotonic()
    await advance(client, auth, 20)  # attempts due at +0, +5 and +15 s
    took = time.monotonic() - began
    assert took < 9, f"the advance took {took:.1f} s"  # 5 s budget; was 3 x 30 s

    # Let the attempt still in flight end (2 s at most), then look at the log.
    await advance(client, auth, 0)
    attempts = await get_json(client, "/_emulator/webhooks/deliveries", auth)
    assert len(attempts) >= 2
    assert all(a["success"] is False for a in attempts)
    assert {a["error"] for a in attempts} == {"timed out after 2 s"}
