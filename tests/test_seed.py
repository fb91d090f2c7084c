"""Seeded state (`serve --seed FILE`, LIVEPEER_EMULATOR_SEED) and `export` / `import`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from emulator import cli
from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.seeding import SeedError
from emulator.settings import Settings
from tests.conftest import SAMPLE_MP4
from tests.serving import emulator_command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "seed" / "seed.yaml"
CI = {"Authorization": "Bearer ci-key"}
READY_ID = "7b4b1c2e-0000-4000-8000-000000000001"


def _app(data_dir: Path, seed: str, **settings: Any) -> Any:
    return create_app(
        Settings(data_dir=data_dir, clock="manual", seed=seed, **settings),
        clock=ManualClock(start_ms=1_700_000_000_000),
    )


async def _json(client: TestClient, path: str, headers: dict[str, str] = CI) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def _state(client: TestClient) -> dict[str, Any]:
    assets = await _json(client, "/api/asset")
    return {
        "assets": sorted(
            (a["name"], a["id"], a["playbackId"], a["status"]["phase"]) for a in assets
        ),
        "webhooks": await _json(client, "/api/webhook"),
        "keys": await _json(client, "/api/access-control/signing-key"),
        # Without the URLs, which name the port each test server got.
        "other": [
            {k: v for k, v in a.items() if not k.endswith("Url")}
            for a in await _json(client, "/api/asset", {"Authorization": "Bearer other-team-key"})
        ],
    }


async def test_the_example_seed_gives_each_phase_through_the_real_path(tmp_path: Path) -> None:
    # Keys configured: the seed's tenants are accepted all the same.
    app = _app(tmp_path / "data", str(EXAMPLE), api_key=("ops=ops-key",))
    async with TestClient(TestServer(app)) as client:
        assets = {a["name"]: a for a in await _json(client, "/api/asset")}
        ready = assets["holiday.mp4"]
        assert (ready["id"], ready["playbackId"]) == (READY_ID, "7b4bholiday00001")
        assert ready["status"] == {"phase": "ready", "updatedAt": 1_700_000_000_000}
        assert ready["createdByTokenName"] == "ci"
        assert ready["videoSpec"]["format"] and ready["size"] == SAMPLE_MP4.stat().st_size
        info = await _json(client, f"/api/playback/{ready['playbackId']}")
        hls = next(s for s in info["meta"]["source"] if s["hrn"] == "HLS (TS)")
        playlist = await client.get(urlsplit(hls["url"]).path)
        assert playlist.status == 200 and "#EXTM3U" in await playlist.text()
        failed = assets["broken.mp4"]["status"]
        assert failed["phase"] == "failed"
        assert failed["errorMessage"] == "Failed to transcode video: invalid codec"
        assert assets["never-uploaded.mp4"]["status"]["phase"] == "uploading"
        processing = assets["still-processing.mp4"]
        assert processing["status"]["phase"] == "processing"
        # The rest of its plan runs on the clock, as any asset's.
        moved = await client.post("/_emulator/clock/advance", json={"seconds": 5}, headers=CI)
        assert moved.status == 200
        again = await _json(client, f"/api/asset/{processing['id']}")
        assert again["status"]["phase"] == "ready"
        tasks = await _json(client, "/api/task")
        assert {t["outputAssetId"] for t in tasks} == {a["id"] for a in assets.values()}
        [hook] = await _json(client, "/api/webhook")
        assert hook["id"] == "5e0d5d3a-0000-4000-8000-000000000002"
        assert hook["sharedSecret"] == "my-shared-secret"
        assert hook["events"] == ["asset.ready", "asset.failed"]
        [key] = await _json(client, "/api/access-control/signing-key")
        assert key["id"] == "9a3f1d7c-0000-4000-8000-000000000003" and "privateKey" not in key
        other = await _json(client, "/api/asset", {"Authorization": "Bearer other-team-key"})
        assert [(a["name"], a["status"]["phase"]) for a in other] == [("intro.mp4", "ready")]
        assert other[0]["createdByTokenName"] == "default"
        unknown = await client.get("/api/asset", headers={"Authorization": "Bearer nobody"})
        assert unknown.status == 401


async def test_the_same_seed_twice_gives_the_same_state(tmp_path: Path) -> None:
    states = []
    for data_dir in ("a", "a", "b"):  # twice on one data dir, then on a fresh one
        async with TestClient(TestServer(_app(tmp_path / data_dir, str(EXAMPLE)))) as client:
            states.append(await _state(client))
    assert states[0] == states[1] == states[2]
    assert len(states[0]["assets"]) == 4


async def test_what_a_test_changed_is_kept_on_the_next_start(tmp_path: Path) -> None:
    async with TestClient(TestServer(_app(tmp_path / "d", str(EXAMPLE)))) as client:
        deleted = await client.delete(f"/api/asset/{READY_ID}", headers=CI)
        assert deleted.status == 204
    async with TestClient(TestServer(_app(tmp_path / "d", str(EXAMPLE)))) as client:
        names = {a["name"] for a in await _json(client, "/api/asset")}
        assert "holiday.mp4" not in names and len(names) == 3


URL_SEED = """\
tenants:
  - key: ci-key
    name: ci
    assets:
      - name: remote.mp4
        url: {url}/media/clip.mp4
      - name: remote-broken.mp4
        url: {url}/media/clip.mp4?take=2
        phase: failed
        error: "Failed to transcode video: invalid codec"
"""


async def test_a_url_asset_is_downloaded_once_and_ends_in_its_phase(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    downloads: list[str] = []

    async def clip(request: web.Request) -> web.StreamResponse:
        downloads.append(request.path_qs)
        return web.FileResponse(SAMPLE_MP4)

    files = web.Application()
    files.router.add_get("/media/clip.mp4", clip)
    server = await aiohttp_server(files)
    root = str(server.make_url("")).rstrip("/")
    seed = tmp_path / "seed.yaml"
    seed.write_text(URL_SEED.format(url=root))
    url = f"{root}/media/clip.mp4"
    states = []
    for _ in range(2):  # the second start on the same data dir adds (and fetches) nothing
        async with TestClient(TestServer(_app(tmp_path / "data", str(seed)))) as client:
            assets = {a["name"]: a for a in await _json(client, "/api/asset")}
            ready = assets["remote.mp4"]
            assert ready["status"]["phase"] == "ready"
            assert ready["source"] == {"type": "url", "url": url}
            assert ready["size"] == SAMPLE_MP4.stat().st_size
            assert ready["createdByTokenName"] == "ci"
            detail = await _json(client, f"/api/asset/{ready['id']}?details=1")
            assert detail["videoSpec"]["tracks"][0]["width"] == 320
            video = await client.get(f"/asset/{ready['playbackId']}/video")
            assert video.status == 200 and await video.read() == SAMPLE_MP4.read_bytes()
            info = await _json(client, f"/api/playback/{ready['playbackId']}")
            hls = next(s for s in info["meta"]["source"] if s["hrn"] == "HLS (TS)")
            playlist = await client.get(urlsplit(hls["url"]).path)
            assert playlist.status == 200 and "#EXTM3U" in await playlist.text()
            broken = assets["remote-broken.mp4"]
            assert broken["status"]["phase"] == "failed"
            assert broken["status"]["errorMessage"] == "Failed to transcode video: invalid codec"
            assert broken["source"] == {"type": "url", "url": url + "?take=2"}
            tasks = {t["outputAssetId"]: t for t in await _json(client, "/api/task")}
            assert tasks[ready["id"]]["type"] == "upload"
            assert tasks[ready["id"]]["params"]["upload"]["url"] == url
            assert tasks[ready["id"]]["status"]["phase"] == "completed"
            states.append(await _state(client))
    assert states[0] == states[1]
    assert sorted(downloads) == ["/media/clip.mp4", "/media/clip.mp4?take=2"]


async def test_a_url_that_cannot_be_downloaded_refuses_the_start(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(web.Application())  # answers 404 to everything
    seed = tmp_path / "seed.yaml"
    seed.write_text(URL_SEED.format(url=str(server.make_url("")).rstrip("/")))
    emulator = TestServer(_app(tmp_path / "data", str(seed)))
    with pytest.raises(SeedError) as caught:
        await emulator.start_server()
    await emulator.close()
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (5, "asset 'remote.mp4' ended failed, not ready: failed to download: 404 Not Found")
    ]


BAD_SEED = """\
tenants:
  - key: k1
    assets:
      - name: a.mp4
        file: missing.mp4
      - name: b.mp4
        phase: finished
        file: clip.mp4
      - file: clip.mp4
    webhooks:
      - name: hook
        url: ftp://example
        evnets: [asset.ready]
  - key: k1
"""


def test_a_bad_seed_file_is_refused_with_file_line_reasons(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(SAMPLE_MP4.read_bytes())
    seed = tmp_path / "bad.yaml"
    seed.write_text(BAD_SEED)
    with pytest.raises(SeedError) as caught:
        _app(tmp_path / "data", str(seed))
    lines = caught.value.problems
    assert [(p.line, p.message) for p in lines] == [
        (5, f"no such media file: {tmp_path / 'missing.mp4'}"),
        (7, "phase must be one of uploading, waiting, processing, ready, failed, got 'finished'"),
        (9, "an asset needs a name"),
        (12, "url 'ftp://example' must be http(s)://HOST/…"),
        (13, "unknown key 'evnets' in a webhook; did you mean 'events'?"),
        (14, "tenant key 'k1' is given on line 2 too"),
    ]
    # `serve` refuses to start on it: every line as FILE:LINE: reason, exit status 2.
    done = subprocess.run(
        [*emulator_command(), "serve", "--port", "0", "--data-dir", str(tmp_path / "d")],
        env={**_env(), "LIVEPEER_EMULATOR_SEED": str(seed)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert f"{seed}:5: no such media file" in done.stderr
    assert f"{seed}:14: tenant key 'k1' is given on line 2 too" in done.stderr
    assert "6 problems in the seed file" in done.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("LIVEPEER_EMULATOR_")}


def test_a_keyed_container_seeds_from_the_env_var(serve: Any, tmp_path: Path) -> None:
    server = serve(
        "--clock",
        "manual",
        env={"LIVEPEER_EMULATOR_SEED": str(EXAMPLE), "LIVEPEER_EMULATOR_API_KEY": "ops-key"},
    )
    status, assets = server.request("GET", "/api/asset", key="ci-key")
    assert status == 200
    assert {a["name"]: a["status"]["phase"] for a in assets}["holiday.mp4"] == "ready"
    status, _ = server.request("GET", "/api/asset", key="ops-key")
    assert status == 200


async def test_export_then_import_moves_the_state(tmp_path: Path) -> None:
    source, export, target = tmp_path / "source", tmp_path / "export", tmp_path / "target"
    async with TestClient(TestServer(_app(source, str(EXAMPLE)))) as client:
        before = await _state(client)
    assert cli.main(["export", str(export), "--data-dir", str(source)]) == 0
    assert (export / "emulator.sqlite3").is_file() and not list(export.glob("*.part"))
    # A second export over it, and an import over a non-empty data dir, need --force.
    assert cli.main(["export", str(export), "--data-dir", str(source)]) == 2
    target.mkdir()
    (target / "something").write_text("x")
    assert cli.main(["import", str(export), "--data-dir", str(target)]) == 2
    assert cli.main(["import", str(export), "--data-dir", str(target), "--force"]) == 0
    assert (target / "something").exists()  # --force replaces only the emulator's data
    # Without a seed: the state is the export's, media and outputs included.
    app = create_app(
        Settings(data_dir=target, clock="manual"), clock=ManualClock(start_ms=1_700_000_000_000)
    )
    async with TestClient(TestServer(app)) as client:
        assert await _state(client) == before
        video = await client.get("/asset/7b4bholiday00001/video")
        assert video.status == 200 and await video.read() == SAMPLE_MP4.read_bytes()
        info = await _json(client, "/api/playback/7b4bholiday00001")
        assert info["meta"]["source"]


def test_import_refuses_what_is_not_an_export(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "media").mkdir()
    assert cli.main(["import", str(tmp_path / "half"), "--data-dir", str(tmp_path / "d")]) == 2
    assert "is not an export" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    assert cli.main(["export", str(tmp_path / "e"), "--data-dir", str(tmp_path / "none")]) == 2
    assert "holds no emulator data" in capsys.readouterr().err
