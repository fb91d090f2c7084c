"""Small helpers shared by the in-process HTTP tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL


def path_of(url: str) -> str:
    """The path and query of an absolute URL the server handed out."""
    return str(URL(url).relative())


async def create_upload(client: TestClient, auth: dict[str, str], name: str = "clip") -> Any:
    resp = await client.post("/api/asset/request-upload", json={"name": name}, headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def upload(client: TestClient, auth: dict[str, str], media: Path, name: str = "clip") -> Any:
    """request-upload + direct PUT of `media`; returns the request-upload body."""
    created = await create_upload(client, auth, name)
    put = await client.put(path_of(created["url"]), data=media.read_bytes())
    assert put.status == 200, await put.text()
    return created


async def advance(client: TestClient, auth: dict[str, str], seconds: float) -> Any:
    resp = await client.post("/_emulator/clock/advance", json={"seconds": seconds}, headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def get_json(client: TestClient, path: str, auth: dict[str, str]) -> Any:
    resp = await client.get(path, headers=auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()
