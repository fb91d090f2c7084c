from __future__ import annotations

from yarl import URL

from tests.conftest import SAMPLE_MP4


async def test_upload_then_advance_to_ready(client, auth) -> None:  # type: ignore[no-untyped-def]
    resp = await client.post("/api/asset/request-upload", json={"name": "a"}, headers=auth)
    assert resp.status == 200
    body = await resp.json()
    put = await client.put(str(URL(body["url"]).relative()), data=SAMPLE_MP4.read_bytes())
    assert put.status == 200
    adv = await client.post("/_emulator/clock/advance", json={"seconds": 10}, headers=auth)
    assert adv.status == 200, await adv.text()
    got = await client.get(f"/api/asset/{body['asset']['id']}", headers=auth)
    assert (await got.json())["status"]["phase"] == "ready"
