"""Encoder: real ffmpeg on the real fixtures makes Studio's HLS, static MP4s and thumbnails."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from pathlib import Path
from typing import Any

import ffmpeg
import pytest

from emulator.media import EncodeFailed, Encoder, Prober
from emulator.renditions import OutputPlan, plan_outputs
from tests.conftest import FIXTURES, SAMPLE_MP4

WEBM = FIXTURES / "sample-640x360.webm"  # VP9, no audio
TONE = FIXTURES / "tone.m4a"  # AAC only
FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"


async def plan_for(source: Path, mode: str, **kwargs: Any) -> OutputPlan:
    probed = await Prober(FFPROBE).probe(source)
    assert probed.video_spec is not None, probed.error
    plan = plan_outputs(probed.video_spec, mode, **kwargs)
    assert plan is not None
    return plan


async def make(
    source: Path, mode: str, dest: Path, **kwargs: Any
) -> tuple[list[dict[str, Any]], list[float]]:
    dest.mkdir()
    seen: list[float] = []
    files = await Encoder(FFMPEG).make_outputs(
        source, await plan_for(source, mode, **kwargs), dest, seen.append
    )
    return files, seen


def master(dest: Path) -> list[tuple[dict[str, str], str]]:
    """(attributes, URI) of each variant of the master playlist, after checking its head."""
    lines = (dest / "index.m3u8").read_text().splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"]
    variants = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            variants.append(({k: v.strip('"') for k, v in attrs.items()}, lines[i + 1]))
    return variants


def variant_segments(dest: Path, uri: str) -> list[Path]:
    text = (dest / uri).read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
    names = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert names and all(re.fullmatch(r"\d+\.ts", n) for n in names)  # relative URIs
    segments = [(dest / uri).parent / n for n in names]
    assert all(s.is_file() and s.stat().st_size > 0 for s in segments)
    return segments


def streams(path: Path) -> dict[str, dict[str, Any]]:
    probed = ffmpeg.probe(str(path), cmd=FFPROBE)
    return {s["codec_type"]: s for s in probed["streams"]}


def avc1(video_stream: dict[str, Any]) -> str:
    profiles = {"Constrained Baseline": "4240", "Baseline": "4200", "Main": "4d00", "High": "6400"}
    return f"avc1.{profiles[video_stream['profile']]}{video_stream['level']:02x}"


def assert_progress(seen: list[float]) -> None:
    assert seen and seen[-1] == 1.0
    assert all(0 <= a <= b <= 1 for a, b in itertools.pairwise(seen))


async def test_copy_mode_remuxes_the_mp4_into_hls_mp4_and_thumbnails(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    files, seen = await make(SAMPLE_MP4, "copy", dest)
    size = (dest / "static240p0.mp4").stat().st_size
    assert files == [
        {"type": "catalyst_hls_manifest", "path": "index.m3u8"},
        {
            "type": "static_transcoded_mp4",
            "path": "static240p0.mp4",
            "spec": {"size": size, "width": 320, "height": 240, "bitrate": round(size * 8 / 2.0)},
        },
        {"type": "thumbnails_vtt", "path": "thumbnails/thumbnails.vtt"},
    ]
    [(attrs, uri)] = master(dest)
    assert uri == "240p0/index.m3u8"
    assert attrs["RESOLUTION"] == "320x240" and int(attrs["BANDWIDTH"]) > 100_000
    segment = variant_segments(dest, uri)[0]
    in_segment = streams(segment)
    assert (in_segment["video"]["codec_name"], in_segment["audio"]["codec_name"]) == ("h264", "aac")
    assert (in_segment["video"]["width"], in_segment["video"]["height"]) == (320, 240)
    # CODECS says what the segment holds (the fixture is High profile, level 1.3).
    assert attrs["CODECS"] == f"{avc1(in_segment['video'])},mp4a.40.2" == "avc1.64000d,mp4a.40.2"
    mp4 = dest / "static240p0.mp4"
    in_mp4 = streams(mp4)
    assert (in_mp4["video"]["codec_name"], in_mp4["audio"]["codec_name"]) == ("h264", "aac")
    assert (in_mp4["video"]["width"], in_mp4["video"]["height"]) == (320, 240)
    data = mp4.read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")  # faststart
    assert (dest / "thumbnails" / "thumbnails.vtt").read_text() == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nkeyframes_0.jpg\n"
    )
    jpeg = (dest / "thumbnails" / "keyframes_0.jpg").read_bytes()
    assert jpeg[:3] == b"\xff\xd8\xff" and jpeg[-2:] == b"\xff\xd9"
    assert sorted(p.name for p in (dest / "thumbnails").iterdir()) == [
        "keyframes_0.jpg",
        "thumbnails.vtt",
    ]
    assert_progress(seen)


async def test_copy_mode_transcodes_webm_to_h264(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    files, seen = await make(WEBM, "copy", dest)
    assert [f["path"] for f in files] == [
        "index.m3u8",
        "static360p0.mp4",
        "thumbnails/thumbnails.vtt",
    ]
    [(attrs, uri)] = master(dest)
    assert attrs["RESOLUTION"] == "640x360"
    segment = streams(variant_segments(dest, uri)[0])
    assert set(segment) == {"video"}  # the fixture has no audio track
    assert segment["video"]["codec_name"] == "h264" and segment["video"]["pix_fmt"] == "yuv420p"
    assert attrs["CODECS"] == avc1(segment["video"])
    assert streams(dest / "static360p0.mp4")["video"]["codec_name"] == "h264"
    vtt = (dest / "thumbnails" / "thumbnails.vtt").read_text()
    assert vtt.endswith("00:00:00.000 --> 00:00:03.000\nkeyframes_0.jpg\n")
    assert_progress(seen)


async def test_transcode_mode_makes_the_ladder_up_to_the_source(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    files, _ = await make(WEBM, "transcode", dest)
    assert [f["path"] for f in files] == [
        "index.m3u8",
        "static360p0.mp4",
        "static240p0.mp4",
        "thumbnails/thumbnails.vtt",
    ]
    variants = master(dest)
    assert [(a["RESOLUTION"], uri) for a, uri in variants] == [
        ("640x360", "360p0/index.m3u8"),
        ("426x240", "240p0/index.m3u8"),
    ]
    bandwidths = [int(a["BANDWIDTH"]) for a, _ in variants]
    assert bandwidths == sorted(bandwidths, reverse=True)
    for attrs, uri in variants:
        video = streams(variant_segments(dest, uri)[0])["video"]
        assert attrs["RESOLUTION"] == f"{video['width']}x{video['height']}"
        assert attrs["CODECS"] == avc1(video)
    assert [f["spec"]["width"] for f in files if "spec" in f] == [640, 426]


async def test_audio_only_gets_an_audio_only_hls_and_nothing_else(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    files, seen = await make(TONE, "copy", dest)
    assert files == [{"type": "catalyst_hls_manifest", "path": "index.m3u8"}]
    [(attrs, uri)] = master(dest)
    assert "RESOLUTION" not in attrs and attrs["CODECS"] == "mp4a.40.2"
    assert set(streams(variant_segments(dest, uri)[0])) == {"audio"}
    assert sorted(p.name for p in dest.iterdir()) == ["audio", "index.m3u8"]
    assert_progress(seen)


async def test_a_truncated_source_fails_naming_the_step_and_leaves_no_master(
    tmp_path: Path,
) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(SAMPLE_MP4.read_bytes()[:20_000])  # moov intact, mdat cut
    plan = await plan_for(SAMPLE_MP4, "copy")  # as probed before the bytes went missing
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(EncodeFailed) as failed:
        await Encoder(FFMPEG).make_outputs(truncated, plan, dest)
    message = str(failed.value)
    # Whichever run found it first: the remux, or the thumbnails beside it.
    assert re.match(r"Failed to remux video: (HLS 240p0, MP4|thumbnails): \S", message), message
    assert str(tmp_path) not in message and "@ 0x" not in message
    assert not (dest / "index.m3u8").exists()


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.subprocess.Process]:
    """Every ffmpeg process started through emulator.media, in order (ffprobe's aside)."""
    started: list[asyncio.subprocess.Process] = []
    real = asyncio.create_subprocess_exec

    async def recording(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        proc = await real(*args, **kwargs)
        if args[0] == FFMPEG:
            started.append(proc)
        return proc

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)
    return started


async def test_one_ffmpeg_process_makes_everything_when_transcoding(
    tmp_path: Path, spawned: list[asyncio.subprocess.Process]
) -> None:
    await make(SAMPLE_MP4, "transcode", tmp_path / "out")
    assert len(spawned) == 1 and spawned[0].returncode == 0


async def test_a_remux_makes_thumbnails_in_a_second_process_beside_it(
    tmp_path: Path, spawned: list[asyncio.subprocess.Process]
) -> None:
    await make(SAMPLE_MP4, "copy", tmp_path / "out")
    assert len(spawned) == 2 and all(proc.returncode == 0 for proc in spawned)


async def _stalled(tmp_path: Path) -> tuple[Path, OutputPlan]:
    """A source ffmpeg waits on forever: a FIFO nobody writes to."""
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)
    dest = tmp_path / "out"
    dest.mkdir()
    return fifo, await plan_for(SAMPLE_MP4, "copy")


async def test_cancelling_kills_ffmpeg_and_reaps_it(
    tmp_path: Path, spawned: list[asyncio.subprocess.Process]
) -> None:
    fifo, plan = await _stalled(tmp_path)
    task = asyncio.create_task(Encoder(FFMPEG).make_outputs(fifo, plan, tmp_path / "out"))
    for _ in range(500):  # bounded: ffmpeg starts within a few seconds even on a busy machine
        if len(spawned) == 2:  # the remux and the thumbnails
            break
        await asyncio.sleep(0.01)
    assert len(spawned) == 2
    assert all(proc.returncode is None for proc in spawned)  # running, blocked on the FIFO
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for proc in spawned:
        assert proc.returncode is not None  # killed and waited for: no zombie
        with pytest.raises(ProcessLookupError):
            os.kill(proc.pid, 0)


async def test_a_stalled_ffmpeg_times_out(
    tmp_path: Path, spawned: list[asyncio.subprocess.Process]
) -> None:
    fifo, plan = await _stalled(tmp_path)
    with pytest.raises(EncodeFailed, match=r"^Failed to remux video: .*: timed out after 0\.5 s$"):
        await Encoder(FFMPEG, timeout=0.5).make_outputs(fifo, plan, tmp_path / "out")
    assert spawned[0].returncode is not None
