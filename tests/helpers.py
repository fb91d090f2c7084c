"""Small helpers shared by the in-process HTTP tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL


def npm_project(project: Path, package: str, needed_for: str) -> Path:
    """A tests/ npm project with its packages installed (`npm ci` on first use, as a
    newcomer's `make test` does; CI runs it in .ci/run); skipped without node and npm."""
    npm = shutil.which("npm")
    if not shutil.which("node") or not npm:
        pytest.skip(f"node and npm are not installed: {needed_for} needs them")
    if not (project / "node_modules" / package).is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=project,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return project


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
