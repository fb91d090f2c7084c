"""The same fixture from async tests: pytest-asyncio with aiohttp, anyio with the SDK."""

from pathlib import Path

import aiohttp
import pytest

VIDEO = Path(__file__).resolve().parents[2] / "fixtures" / "sample.mp4"


@pytest.mark.asyncio
async def test_aiohttp_client_under_pytest_asyncio(livepeer_emulator):
    auth = {"Authorization": f"Bearer {livepeer_emulator.api_key}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{livepeer_emulator.api_url}/asset/request-upload", json={"name": "a"}, headers=auth
        ) as resp:
            assert resp.status == 200
            created = await resp.json()
        async with http.put(created["url"], data=VIDEO.read_bytes()) as resp:
            assert resp.status == 200
        livepeer_emulator.wait_for_asset(created["asset"]["id"])
        async with http.get(
            f"{livepeer_emulator.api_url}/asset/{created['asset']['id']}", headers=auth
        ) as resp:
            assert (await resp.json())["status"]["phase"] == "ready"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_sdk_async_methods_under_anyio(livepeer_emulator):
    lp = livepeer_emulator.sdk()
    created = (await lp.asset.create_async(request={"name": "b"})).data
    livepeer_emulator.advance(60)  # nothing uploaded: time alone changes nothing
    asset = (await lp.asset.get_async(asset_id=created.asset.id)).asset
    assert asset.status.phase.value == "uploading"
