"""After the last byte: the upload is answered once the bytes are stored, hashing and
ffprobe run while the asset waits, and that work resumes if the server stops first."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from emulator.app import create_app
from emulator.media import Prober, find_tools
from emulator.models import ProbeResult
from emulator.routes.common import PROCESSING
from emulator.settings import Settings
from tests.conftest import SAMPLE_MP4
from tests.helpers import get_json, upload


class HeldProber(Prober):
    """ffprobe that does not start until the test lets it."""

    def __init__(self) -> None:
        super().__init__(find_tools(None, None).ffprobe)
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def probe(self, path: Path) -> ProbeResult:
        self.started.set()
        await self.go.wait()
        return await super().probe(path)


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, clock="real", scenario="instant")


async def test_upload_is_answered_before_its_media_is_analysed(aiohttp_client, tmp_path, auth):
    prober = HeldProber()
    app = create_app(_settings(tmp_path / "d"), prober=prober)
    client = await aiohttp_client(app)

    created = await upload(client, auth, SAMPLE_MP4)  # 200 while ffprobe has not run

    await prober.started.wait()
    path = f"/api/asset/{created['asset']['id']}"
    asset = await get_json(client, path, auth)
    assert asset["status"]["phase"] == "waiting"
    assert "hash" not in asset and "videoSpec" not in asset
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    assert task["status"]["phase"] == "waiting"

    prober.go.set()
    await app[PROCESSING].settle()
    asset = await get_json(client, path, auth)
    assert asset["status"]["phase"] == "ready"
    assert asset["videoSpec"]["duration"] == 2.0


async def test_analysis_cut_off_by_a_stop_runs_again_on_start(aiohttp_client, tmp_path, auth):
    data = tmp_path / "d"
    held = HeldProber()
    first = await aiohttp_client(create_app(_settings(data), prober=held))
    created = await upload(first, auth, SAMPLE_MP4)
    await held.started.wait()
    await first.close()  # stops the server with the analysis still waiting for ffprobe

    app = create_app(_settings(data))
    second = await aiohttp_client(app)
    await app[PROCESSING].settle()

    asset = await get_json(second, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "ready"
    body = SAMPLE_MP4.read_bytes()
    assert asset["size"] == len(body)
    assert asset["hash"] == [
        {"hash": hashlib.md5(body).hexdigest(), "algorithm": "md5"},
        {"hash": hashlib.sha256(body).hexdigest(), "algorithm": "sha256"},
    ]
    task = await get_json(second, f"/api/task/{created['task']['id']}", auth)
    assert task["status"]["phase"] == "completed"


async def test_deleting_during_analysis_leaves_no_media(aiohttp_client, tmp_path, auth):
    prober = HeldProber()
    app = create_app(_settings(tmp_path / "d"), prober=prober)
    client = await aiohttp_client(app)
    created = await upload(client, auth, SAMPLE_MP4)
    await prober.started.wait()

    resp = await client.delete(f"/api/asset/{created['asset']['id']}", headers=auth)
    assert resp.status == 204
    prober.go.set()
    await app[PROCESSING].settle()

    assert list((tmp_path / "d" / "media").iterdir()) == []
    resp = await client.get(f"/api/asset/{created['asset']['id']}", headers=auth)
    assert resp.status == 404
