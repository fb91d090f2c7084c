"""Playable outputs: made by ffmpeg during processing, served at Studio's URL shapes, listed
by playback info, removed with their asset, and made once per distinct source."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.app import create_app
from emulator.clock import ManualClock
from emulator.media import Encoder, Prober, find_tools
from emulator.models import ProbeResult
from emulator.renditions import OutputPlan
from emulator.routes.common import PROCESSING, SCHEDULER
from emulator.scenarios import Scenario
from emulator.scenarios.loading import parse
from emulator.settings import Settings
from emulator.timeline import TimelineProfile
from tests.conftest import FIXTURES, SAMPLE_MP4, SAMPLE_WEBM
from tests.helpers import advance, get_json, path_of, upload

ORIGIN = "http://app.example.test"


async def _client(aiohttp_client: Any, data: Path, **settings: Any) -> TestClient:
    app = create_app(
        Settings(data_dir=data, clock="manual", **settings), clock=ManualClock(), prober=None
    )
    client: TestClient = await aiohttp_client(app)
    return client


async def _ready(client: TestClient, auth: dict[str, str], media: Path, name: str = "clip") -> Any:
    created = await upload(client, auth, media, name)
    await advance(client, auth, 10)
    return await get_json(client, f"/api/asset/{created['asset']['id']}", auth)


async def test_playback_url_is_the_hls_playlist_and_appears_with_source_playback(
    client: TestClient, auth: dict[str, str]
) -> None:
    created = await upload(client, auth, SAMPLE_MP4)
    path = f"/api/asset/{created['asset']['id']}"
    pid = created["asset"]["playbackId"]
    waiting = await get_json(client, path, auth)
    assert waiting["status"]["phase"] == "waiting" and "playbackUrl" not in waiting
    response = await client.get(f"/api/playback/{pid}")
    assert (response.status, await response.json()) == (
        422,
        {"errors": ["asset is not ready for playback"]},
    )
    # Outputs exist on disk, but nothing serves them before the timeline says so.
    assert (await client.get(f"/hls/{pid}/index.m3u8")).status == 404

    await advance(client, auth, 1.25)  # the first progress report: source playback is ready
    early = await get_json(client, path, auth)
    assert early["status"]["phase"] == "processing"
    assert path_of(early["playbackUrl"]) == f"/hls/{pid}/index.m3u8"
    assert "files" not in early and "sourcePlaybackReady" not in early  # write-only
    info = await client.get(f"/api/playback/{pid}")
    assert info.status == 200
    assert (await client.get(f"/hls/{pid}/index.m3u8")).status == 200

    await advance(client, auth, 5)
    ready = await get_json(client, path, auth)
    assert ready["status"]["phase"] == "ready"
    assert ready["playbackUrl"] == early["playbackUrl"]
    assert path_of(ready["downloadUrl"]) == f"/asset/{pid}/video/download.mp4"


async def test_playback_info_lists_mp4s_then_hls_then_thumbnails(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _ready(client, auth, SAMPLE_MP4)
    pid = asset["playbackId"]
    response = await client.get(f"/api/playback/{pid}")
    assert response.status == 200
    info = await response.json()
    assert info["type"] == "vod" and info["meta"]["playbackPolicy"] is None
    sources = info["meta"]["source"]
    assert [s["hrn"] for s in sources] == ["MP4", "HLS (TS)", "Thumbnails"]
    mp4, hls, vtt = sources
    assert mp4["type"] == "html5/video/mp4"
    assert path_of(mp4["url"]) == f"/hls/{pid}/static240p0.mp4"
    assert (mp4["width"], mp4["height"]) == (320, 240)
    assert mp4["size"] == (await client.get(path_of(mp4["url"]))).content_length
    assert mp4["bitrate"] > 0
    assert hls == {
        "hrn": "HLS (TS)",
        "type": "html5/application/vnd.apple.mpegurl",
        "url": asset["playbackUrl"],
    }
    assert vtt["type"] == "text/vtt"
    assert path_of(vtt["url"]) == f"/hls/{pid}/thumbnails/thumbnails.vtt"


async def test_transcode_ladder_sorts_mp4s_by_bitrate(
    client: TestClient, auth: dict[str, str]
) -> None:
    scenario = {"name": "ladder", "outputs": "transcode"}
    response = await client.put("/_emulator/scenario", json=scenario, headers=auth)
    assert response.status == 200, await response.text()
    asset = await _ready(client, auth, SAMPLE_WEBM)
    info = await (await client.get(f"/api/playback/{asset['playbackId']}")).json()
    mp4s = [s for s in info["meta"]["source"] if s["hrn"] == "MP4"]
    assert [path_of(s["url"]).rsplit("/", 1)[1] for s in mp4s] == [
        "static360p0.mp4",
        "static240p0.mp4",
    ]
    assert mp4s[0]["bitrate"] > mp4s[1]["bitrate"]
    master = await (await client.get(path_of(asset["playbackUrl"]))).text()
    assert "RESOLUTION=640x360" in master and "RESOLUTION=426x240" in master


async def test_output_files_are_served_as_a_cdn_would(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _ready(client, auth, SAMPLE_MP4)
    pid = asset["playbackId"]
    base = f"/hls/{pid}"
    headers = {"Origin": ORIGIN}

    master = await client.get(f"{base}/index.m3u8", headers=headers)
    assert master.status == 200
    assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert master.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "max-age" in master.headers["Cache-Control"]
    text = await master.text()
    assert text.startswith("#EXTM3U")
    variant_uri = next(line for line in text.splitlines() if line and not line.startswith("#"))
    variant = await client.get(f"{base}/{variant_uri}")
    assert variant.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    playlist = await variant.text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and "#EXT-X-ENDLIST" in playlist
    segment = next(line for line in playlist.splitlines() if line.endswith(".ts"))
    folder = variant_uri.rsplit("/", 1)[0]
    segment_url = f"{base}/{folder}/{segment}"

    whole = await client.get(segment_url)
    assert whole.headers["Content-Type"] == "video/mp2t"
    body = await whole.read()
    assert body[0] == 0x47  # an MPEG-TS sync byte
    etag = whole.headers["ETag"]
    assert "immutable" in whole.headers["Cache-Control"]

    part = await client.get(segment_url, headers={"Range": "bytes=0-187"})
    assert part.status == 206
    assert await part.read() == body[:188]
    head = await client.head(segment_url)
    assert (head.status, head.content_length) == (200, len(body))
    again = await client.get(segment_url, headers={"If-None-Match": etag})
    assert again.status == 304

    mp4 = await client.get(f"{base}/static240p0.mp4")
    assert mp4.headers["Content-Type"] == "video/mp4"
    vtt = await client.get(f"{base}/thumbnails/thumbnails.vtt")
    assert vtt.headers["Content-Type"] == "text/vtt"
    cue = next(line for line in (await vtt.text()).splitlines() if line.endswith(".jpg"))
    jpeg = await client.get(f"{base}/thumbnails/{cue}", headers=headers)
    assert jpeg.headers["Content-Type"] == "image/jpeg"
    assert (await jpeg.read())[:2] == b"\xff\xd8"
    assert jpeg.headers["Access-Control-Allow-Origin"] == ORIGIN


@pytest.mark.parametrize(
    "path",
    [
        "../video",
        "..%2F..%2Femulator.sqlite3",
        "%2E%2E/source",
        "files.json",
        ".hidden",
        "thumbnails/../../source",
        "nope.m3u8",
        "static240p0.mp4/x",
    ],
)
async def test_nothing_outside_the_outputs_is_reachable(
    client: TestClient, auth: dict[str, str], path: str
) -> None:
    asset = await _ready(client, auth, SAMPLE_MP4)
    response = await client.get(f"/hls/{asset['playbackId']}/{path}")
    assert response.status == 404
    assert await response.json() == {"errors": ["not found"]}


async def test_unknown_playback_ids_answer_studio_errors(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = await client.get("/hls/abcd1234abcd1234/index.m3u8")
    assert (response.status, await response.json()) == (404, {"errors": ["not found"]})
    response = await client.get("/api/playback/abcd1234abcd1234")
    assert (response.status, await response.json()) == (
        404,
        {"errors": ["No playback URL found for abcd1234abcd1234"]},
    )


async def test_delete_and_reset_remove_the_outputs(
    client: TestClient, auth: dict[str, str], tmp_path: Path
) -> None:
    first = await _ready(client, auth, SAMPLE_MP4, "one")
    second = await _ready(client, auth, SAMPLE_WEBM, "two")
    media = tmp_path / "data" / "media"
    assert (media / first["id"] / "outputs" / "index.m3u8").is_file()

    assert (await client.delete(f"/api/asset/{first['id']}", headers=auth)).status == 204
    assert not (media / first["id"]).exists()
    gone = await client.get(f"/hls/{first['playbackId']}/index.m3u8")
    assert gone.status == 404

    assert (media / second["id"] / "outputs" / "index.m3u8").is_file()
    assert (await client.post("/_emulator/reset", headers=auth)).status in (200, 204)
    assert not (media / second["id"]).exists()


class CountingProber(Prober):
    def __init__(self) -> None:
        super().__init__(find_tools(None, None).ffprobe)
        self.calls = 0

    async def probe(self, path: Path) -> ProbeResult:
        self.calls += 1
        return await super().probe(path)


async def test_the_same_bytes_twice_skip_ffprobe_and_ffmpeg(
    aiohttp_client: Any, tmp_path: Path, auth: dict[str, str]
) -> None:
    prober = CountingProber()
    data = tmp_path / "data"
    app = create_app(Settings(data_dir=data, clock="manual"), clock=ManualClock(), prober=prober)
    client = await aiohttp_client(app)
    first = await _ready(client, auth, SAMPLE_MP4, "first")
    cache = data / "cache"
    entries = list(cache.iterdir())
    made = sorted(p for p in cache.rglob("*") if p.is_file())

    second = await _ready(client, auth, SAMPLE_MP4, "second")

    assert prober.calls == 1
    assert list(cache.iterdir()) == entries
    assert sorted(p for p in cache.rglob("*") if p.is_file()) == made  # no ffmpeg run
    assert second["videoSpec"] == first["videoSpec"]
    one = data / "media" / first["id"] / "outputs" / "index.m3u8"
    two = data / "media" / second["id"] / "outputs" / "index.m3u8"
    assert one.stat().st_ino == two.stat().st_ino  # hard links: no bytes copied
    # Deleting the first leaves the second playable.
    assert (await client.delete(f"/api/asset/{first['id']}", headers=auth)).status == 204
    response = await client.get(path_of(second["playbackUrl"]))
    assert response.status == 200


async def test_outputs_none_serves_the_uploaded_file(
    aiohttp_client: Any, tmp_path: Path, auth: dict[str, str]
) -> None:
    client = await _client(aiohttp_client, tmp_path / "data", outputs="none")
    asset = await _ready(client, auth, SAMPLE_MP4)
    pid = asset["playbackId"]
    assert path_of(asset["playbackUrl"]) == f"/asset/{pid}/video"
    assert not (tmp_path / "data" / "media" / asset["id"] / "outputs").exists()
    info = await (await client.get(f"/api/playback/{pid}")).json()
    assert [s["hrn"] for s in info["meta"]["source"]] == ["MP4", "HLS (TS)"]
    assert (await client.get(f"/hls/{pid}/index.m3u8")).status == 404


def _corrupt_copy(tmp_path: Path) -> Path:
    """sample.mp4 with its first picture's data overwritten: every packet is still there,
    so ffprobe (which demuxes, not decodes) accepts it; decoding it fails."""
    data = bytearray(SAMPLE_MP4.read_bytes())
    start = data.find(b"mdat") + 8
    start += (len(data) - start) // 20
    data[start : start + 2000] = b"\xff" * 2000
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(data))
    return corrupt


async def test_a_file_ffmpeg_cannot_convert_fails_and_leaves_nothing(
    client: TestClient, auth: dict[str, str], tmp_path: Path
) -> None:
    corrupt = _corrupt_copy(tmp_path)
    assert (await Prober(find_tools(None, None).ffprobe).probe(corrupt)).ok
    bad = await _ready(client, auth, corrupt, "bad")
    good = await _ready(client, auth, SAMPLE_MP4, "good")

    assert bad["status"]["phase"] == "failed"
    message = bad["status"]["errorMessage"]
    # The thumbnails' keyframe decode finds it (the remux itself copies the bad bytes).
    assert message.startswith("Failed to remux video: thumbnails: "), message
    assert "playbackUrl" not in bad
    assert not (tmp_path / "data" / "media" / bad["id"] / "outputs").exists()
    assert not list((tmp_path / "data" / "cache").glob("*/*.tmp"))
    response = await client.get(f"/api/playback/{bad['playbackId']}")
    assert response.status == 422
    assert good["status"]["phase"] == "ready"


async def test_outputs_cut_short_by_a_stop_are_made_again(
    aiohttp_client: Any, tmp_path: Path, auth: dict[str, str]
) -> None:
    data = tmp_path / "data"
    clock = ManualClock()
    first = await aiohttp_client(create_app(Settings(data_dir=data, clock="manual"), clock=clock))
    created = await upload(first, auth, SAMPLE_MP4)
    asset_id = created["asset"]["id"]
    await first.close()
    # As if the server had been killed while ffmpeg ran: no outputs (nor cache) on disk.
    outputs = data / "media" / asset_id / "outputs"
    for path in sorted(outputs.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    outputs.rmdir()
    for entry in (data / "cache").iterdir():
        for path in sorted(entry.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()

    second = await aiohttp_client(create_app(Settings(data_dir=data, clock="manual")))
    await advance(second, auth, 10)
    asset = await get_json(second, f"/api/asset/{asset_id}", auth)
    assert asset["status"]["phase"] == "ready"
    assert (outputs / "index.m3u8").is_file()
    response = await second.get(path_of(asset["playbackUrl"]))
    assert response.status == 200


async def test_outputs_setting_and_scenario_key_are_validated(
    client: TestClient, auth: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="outputs must be"):
        Settings.load(env={"LIVEPEER_EMULATOR_OUTPUTS": "fancy"})
    response = await client.put(
        "/_emulator/scenario", json={"name": "x", "outputs": "fancy"}, headers=auth
    )
    assert response.status == 400
    body = await response.json()
    assert "outputs must be one of copy, transcode, none" in json.dumps(body)


def test_the_scenario_format_example_sets_outputs() -> None:
    """scenarios/README.md's example, as written, parses, with its `outputs` key."""
    text = (FIXTURES.parent / "scenarios" / "README.md").read_text()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    scenario = parse(example, source="scenarios/README.md", default_name="example")
    assert scenario.outputs == "copy"
    assert parse("name: x\n", source="x", default_name="x").outputs is None


class HeldEncoder(Encoder):
    """ffmpeg that reports 60% done, then waits for the test before making anything."""

    def __init__(self) -> None:
        ffmpeg = find_tools(None, None).ffmpeg
        assert ffmpeg is not None
        super().__init__(ffmpeg)
        self.started = asyncio.Event()
        self.go = asyncio.Event()

    async def make_outputs(
        self,
        source: Path,
        plan: OutputPlan,
        dest: Path,
        on_progress: Callable[[float], None] | None = None,
    ) -> list[dict[str, Any]]:
        assert on_progress is not None
        on_progress(0.6)
        self.started.set()
        await self.go.wait()
        return await super().make_outputs(source, plan, dest, on_progress)


async def test_steps_wait_for_ffmpeg_on_the_real_clock(
    aiohttp_client: Any, tmp_path: Path, auth: dict[str, str]
) -> None:
    """Every step is due at once, but progress stops where ffmpeg is, and source playback
    and `ready` wait for the outputs."""
    at_once = TimelineProfile(queue_ms=0, processing_ms=0, progress_steps=4)
    encoder = HeldEncoder()
    app = create_app(
        Settings(data_dir=tmp_path / "data", clock="real"),
        encoder=encoder,
        scenario=Scenario(name="at-once", timeline=at_once),
    )
    client = await aiohttp_client(app)
    created = await upload(client, auth, SAMPLE_MP4)
    path = f"/api/asset/{created['asset']['id']}"
    await encoder.started.wait()
    await app[SCHEDULER].run_due()

    held = await get_json(client, path, auth)
    assert held["status"]["phase"] == "processing"
    assert held["status"]["progress"] == 0.5  # the 0.75 report waits for ffmpeg's 0.6
    assert "playbackUrl" not in held
    response = await client.get(f"/api/playback/{created['asset']['playbackId']}")
    assert response.status == 422

    encoder.go.set()
    await app[PROCESSING].settle()
    await app[SCHEDULER].run_due()
    ready = await get_json(client, path, auth)
    assert ready["status"]["phase"] == "ready"
    assert path_of(ready["playbackUrl"]).endswith("/index.m3u8")
    # Collected now: left to the collector, what this test leaves behind made a later
    # compile by pytest (a plugin's import at session end) fail on CPython 3.11.7 with
    # "AST constructor recursion depth mismatch".
    await client.close()
    gc.collect()


async def test_transcode_honours_the_assets_profiles(
    client: TestClient, auth: dict[str, str]
) -> None:
    scenario = {"name": "ladder", "outputs": "transcode"}
    assert (await client.put("/_emulator/scenario", json=scenario, headers=auth)).status == 200
    profiles = [{"name": "small", "width": 320, "height": 180, "bitrate": 300_000}]
    response = await client.post(
        "/api/asset/request-upload", json={"name": "p", "profiles": profiles}, headers=auth
    )
    created = await response.json()
    put = await client.put(path_of(created["url"]), data=SAMPLE_WEBM.read_bytes())
    assert put.status == 200
    await advance(client, auth, 10)
    asset = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["profiles"] == profiles
    info = await (await client.get(f"/api/playback/{asset['playbackId']}")).json()
    [mp4] = [s for s in info["meta"]["source"] if s["hrn"] == "MP4"]
    assert path_of(mp4["url"]).endswith("/staticsmall.mp4")
    assert (mp4["width"], mp4["height"]) == (320, 180)
    master = await (await client.get(path_of(asset["playbackUrl"]))).text()
    assert "RESOLUTION=320x180" in master and "small/index.m3u8" in master
