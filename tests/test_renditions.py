"""plan_outputs: which renditions, at which sizes and bitrates, from a stored videoSpec."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.renditions import STATIC_MP4_MAX_SECONDS, OutputPlan, Rendition, plan_outputs


def spec(
    codec: str = "h264",
    width: int = 1920,
    height: int = 1080,
    *,
    bitrate: int | None = 5_000_000,
    audio: str | None = "aac",
    duration: float = 10.0,
    pixel_format: str = "yuv420p",
) -> dict[str, Any]:
    video: dict[str, Any] = {
        "type": "video",
        "codec": codec,
        "width": width,
        "height": height,
        "pixelFormat": pixel_format,
        "fps": 30.0,
    }
    if bitrate is not None:
        video["bitrate"] = bitrate
    tracks: list[dict[str, Any]] = [video]
    if audio:
        tracks.append({"type": "audio", "codec": audio, "bitrate": 128_000, "channels": 2})
    return {"format": "mp4", "duration": duration, "bitrate": 6_000_000, "tracks": tracks}


def sizes(plan: OutputPlan | None) -> list[tuple[str, int, int]]:
    assert plan is not None
    return [(r.name, r.width, r.height) for r in plan.renditions]


def test_none_mode_makes_nothing_and_unknown_modes_are_refused() -> None:
    assert plan_outputs(spec(), "none") is None
    with pytest.raises(ValueError, match="unknown output mode"):
        plan_outputs(spec(), "fast")


def test_copy_mode_remuxes_h264_at_the_source_size() -> None:
    plan = plan_outputs(spec(width=320, height=240, bitrate=45_076, duration=2.0), "copy")
    assert plan is not None
    assert plan.renditions == (Rendition("240p0", 320, 240, 45_076, copy_video=True),)
    assert (plan.has_audio, plan.copy_audio) == (True, True)
    assert (plan.static_mp4, plan.thumbnails, plan.duration) == (True, True, 2.0)


def test_copy_mode_estimates_the_video_bitrate_from_the_file_when_the_track_has_none() -> None:
    plan = plan_outputs(spec(bitrate=None), "copy")
    assert plan is not None and plan.renditions[0].video_bitrate == 6_000_000 - 128_000


@pytest.mark.parametrize(
    ("codec", "pixel_format"),
    [("vp9", "yuv420p"), ("vp8", "yuv420p"), ("av1", "yuv420p"), ("hevc", "yuv420p"),
     ("prores", "yuv422p10le"), ("h264", "yuv420p10le"), ("h264", "yuv444p")],
)  # fmt: skip
def test_copy_mode_transcodes_what_browsers_cannot_play(codec: str, pixel_format: str) -> None:
    plan = plan_outputs(
        spec(codec, 641, 361, bitrate=1_000_000, audio="opus", pixel_format=pixel_format),
        "copy",
    )
    assert plan is not None
    (only,) = plan.renditions
    assert only.copy_video is False
    assert (only.name, only.width, only.height) == ("360p0", 640, 360)  # odd sides made even
    assert only.video_bitrate == 1_000_000  # catalyst: 1.2x the source, capped at 360p's 1 Mb/s
    assert (plan.has_audio, plan.copy_audio) == (True, False)


def test_transcode_ladder_for_1080p_has_every_rung_highest_first() -> None:
    plan = plan_outputs(spec(bitrate=5_000_000), "transcode")
    assert sizes(plan) == [
        ("1080p0", 1920, 1080),
        ("720p0", 1280, 720),
        ("360p0", 640, 360),
        ("240p0", 426, 240),
    ]
    assert plan is not None
    bitrates = [r.video_bitrate for r in plan.renditions]
    # The source's bits per pixel times 1.2, capped by each rung's top bitrate.
    assert bitrates == [6_000_000, int(1.2 * 5_000_000 * 4 / 9), 666_666, 250_000]
    assert not any(r.copy_video for r in plan.renditions)


def test_transcode_ladder_never_goes_above_the_source() -> None:
    assert sizes(plan_outputs(spec("vp9", 640, 360), "transcode")) == [
        ("360p0", 640, 360),
        ("240p0", 426, 240),
    ]
    # 4K stops at the top rung; a source between rungs gets one at its own size too.
    assert [n for n, _, _ in sizes(plan_outputs(spec(width=3840, height=2160), "transcode"))] == [
        "1080p0",
        "720p0",
        "360p0",
        "240p0",
    ]
    assert sizes(plan_outputs(spec(width=854, height=480, bitrate=None), "transcode")) == [
        ("480p0", 854, 480),
        ("360p0", 640, 360),
        ("240p0", 426, 240),
    ]


def test_a_source_smaller_than_240p_gets_one_rendition_at_its_own_size() -> None:
    assert sizes(plan_outputs(spec(width=175, height=143), "transcode")) == [("142p0", 174, 142)]


def test_portrait_sources_keep_their_aspect_ratio_rungs_go_by_the_short_side() -> None:
    assert sizes(plan_outputs(spec(width=720, height=1280), "transcode")) == [
        ("720p0", 720, 1280),
        ("360p0", 360, 640),
        ("240p0", 240, 426),
    ]


def test_transcode_profiles_replace_the_ladder() -> None:
    profiles = [
        {"name": "low", "width": 640, "height": 360, "bitrate": 400_000},
        {"name": "hd", "width": 1280, "height": 720, "bitrate": 3_000_000, "fps": 30},
        {"name": "same-size", "bitrate": 900_000, "fps": 30000, "fpsDen": 1001},
    ]
    plan = plan_outputs(spec(width=1440, height=1080), "transcode", profiles=profiles)
    assert plan is not None
    assert plan.renditions == (
        Rendition("hd", 960, 720, 3_000_000, False, 30.0),  # 4:3 source: width follows
        Rendition("same-size", 1440, 1080, 900_000, False, 30000 / 1001),
        Rendition("low", 480, 360, 400_000, False),
    )
    # Copy mode ignores them.
    assert sizes(plan_outputs(spec(), "copy", profiles=profiles)) == [("1080p0", 1920, 1080)]


def test_profile_names_become_safe_distinct_file_names() -> None:
    profiles = [
        {"name": "../../etc", "height": 360, "bitrate": 500_000},
        {"name": "-x y", "height": 240, "bitrate": 400_000},
        {"name": "dup", "height": 240, "bitrate": 300_000},
        {"name": "dup", "height": 240, "bitrate": 200_000},
        {"name": "audio", "height": 240, "bitrate": 100_000},
    ]
    plan = plan_outputs(spec(), "transcode", profiles=profiles)
    assert plan is not None
    assert [r.name for r in plan.renditions] == ["_.._etc", "x_y", "dup", "dup_1", "r_audio"]


def test_static_mp4s_for_short_assets_or_when_asked() -> None:
    short = plan_outputs(spec(duration=STATIC_MP4_MAX_SECONDS - 1), "copy")
    long = plan_outputs(spec(duration=STATIC_MP4_MAX_SECONDS), "copy")
    asked = plan_outputs(spec(duration=600), "copy", static_mp4=True)
    assert short is not None and long is not None and asked is not None
    assert (short.static_mp4, long.static_mp4, asked.static_mp4) == (True, False, True)


def test_audio_only_media_gets_no_renditions_mp4_or_thumbnails() -> None:
    audio_only = {
        "format": "mp4",
        "duration": 2.0,
        "tracks": [{"type": "audio", "codec": "aac", "bitrate": 128_000}],
    }
    plan = plan_outputs(audio_only, "transcode", static_mp4=True)
    assert plan == OutputPlan((), True, True, False, False, 2.0)
    mp3 = {"format": "mp3", "duration": 2.0, "tracks": [{"type": "audio", "codec": "mp3"}]}
    plan = plan_outputs(mp3, "copy")
    assert plan is not None and (plan.has_audio, plan.copy_audio) == (True, False)
    assert plan_outputs({"format": "mp4", "tracks": []}, "copy") is None


def test_key_names_everything_that_changes_the_bytes() -> None:
    base = plan_outputs(spec(), "transcode")
    assert base is not None
    assert base.key() == plan_outputs(spec(), "transcode").key()  # type: ignore[union-attr]
    others = [
        plan_outputs(spec(), "copy"),
        plan_outputs(spec(audio="opus"), "transcode"),
        plan_outputs(spec(duration=500), "transcode"),
        plan_outputs(spec(duration=500), "transcode", static_mp4=True),
        plan_outputs(spec(bitrate=2_000_000), "transcode"),
        plan_outputs(spec(), "transcode", profiles=[{"name": "a", "bitrate": 500_000}]),
    ]
    keys = {p.key() for p in others if p is not None}
    assert len(keys) == len(others) and base.key() not in keys
