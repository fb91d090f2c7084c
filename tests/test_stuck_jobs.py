"""Nothing stays stuck forever (issue 11.5): every background job ends its asset in a
terminal or retrying state, however the job ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.media import Prober
from emulator.models import ProbeResult
from emulator.routes.common import PROCESSING
from emulator.settings import Settings
from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, get_json, upload

# Host names IDNA cannot encode: aiohttp refuses them before any DNS lookup.
BAD_HOSTS = ["http://a..b/clip.mp4", f"http://{'a' * 64}.com/clip.mp4", "http://./clip.mp4"]


@pytest.mark.parametrize("url", BAD_HOSTS)
async def test_import_of_a_host_idna_rejects_fails_instead_of_waiting(
    client: TestClient, auth: dict[str, str], url: str
) -> None:
    resp = await client.post("/api/asset/upload/url", json={"name": "x", "url": url}, headers=auth)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "failed"
    assert asset["status"]["errorMessage"] == f"failed to download: invalid URL {url}"
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    assert task["status"]["phase"] == "failed"


class ExplodingProber(Prober):
    """A probe that dies with an error nobody planned for."""

    def __init__(self) -> None:
        pass

    async def probe(self, path: Path) -> ProbeResult:
        raise RuntimeError("the probe blew up")


async def test_an_analysis_job_that_dies_fails_its_asset(
    aiohttp_client, tmp_path: Path, auth: dict[str, str]
) -> None:
    clock = ManualClock(start_ms=1_700_000_000_000)
    app = create_app(
        Settings(data_dir=tmp_path / "d", clock="manual"), clock=clock, prober=ExplodingProber()
    )
    client = await aiohttp_client(app)
    created = await upload(client, auth, SAMPLE_MP4)
    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "failed"
    assert "the probe blew up" in asset["status"]["errorMessage"]
    task = await get_json(client, f"/api/task/{created['task']['id']}", auth)
    assert task["status"]["phase"] == "failed"
    await app[PROCESSING].settle()
