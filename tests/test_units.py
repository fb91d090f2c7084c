"""Unit tests for the pure parts: timeline, tokens, settings, probe mapping, wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator import media
from emulator.errors import BadRequest, ConfigError
from emulator.models import StepKind, new_playback_id
from emulator.settings import Settings
from emulator.timeline import TimelineProfile, plan
from emulator.tokens import InvalidToken, UploadTokens
from emulator.wire import parse_json, parse_list_query


def test_plan_reports_progress_then_ready() -> None:
    steps = plan(TimelineProfile(queue_ms=500, processing_ms=3000, progress_steps=4))
    assert [(s.offset_ms, s.kind, s.progress) for s in steps] == [
        (500, StepKind.START, 0.0),
        (1250, StepKind.PROGRESS, 0.25),
        (2000, StepKind.PROGRESS, 0.5),
        (2750, StepKind.PROGRESS, 0.75),
        (3500, StepKind.READY, None),
    ]


def test_plan_failure_stops_at_the_failing_point() -> None:
    steps = plan(TimelineProfile(500, 3000, 4), error="bad", fail_at_progress=0.5)
    assert [s.kind for s in steps] == [
        StepKind.START,
        StepKind.PROGRESS,
        StepKind.PROGRESS,
        StepKind.FAIL,
    ]
    assert (steps[-1].offset_ms, steps[-1].error) == (2000, "bad")
    immediate = plan(TimelineProfile(0, 0, 1), error="nope")
    assert [(s.offset_ms, s.kind) for s in immediate] == [(0, StepKind.START), (0, StepKind.FAIL)]


def test_upload_tokens_round_trip_and_reject_tampering() -> None:
    tokens = UploadTokens(b"secret")
    token = tokens.issue("abcd1234efgh5678")
    assert tokens.verify(token) == "abcd1234efgh5678"
    with pytest.raises(InvalidToken, match="invalid signature"):
        UploadTokens(b"other").verify(token)
    with pytest.raises(InvalidToken, match="jwt malformed"):
        tokens.verify("a.b")
    with pytest.raises(InvalidToken, match="jwt must be provided"):
        tokens.verify(None)


def test_playback_ids_share_the_asset_ids_prefix() -> None:
    pid = new_playback_id("0a1b2c3d-0000-4000-8000-000000000000")
    assert len(pid) == 16 and pid.startswith("0a1b") and pid.isalnum() and pid == pid.lower()


def test_settings_precedence_flag_env_default(tmp_path: Path) -> None:
    env = {
        "LIVEPEER_EMULATOR_PORT": "4000",
        "LIVEPEER_EMULATOR_API_KEY": "a, b",
        "LIVEPEER_EMULATOR_PUBLIC_URL": "http://h:1/",
    }
    s = Settings.load({"port": 5000}, env)
    assert (s.port, s.api_keys, s.public_url) == (5000, ("a", "b"), "http://h:1")
    s = Settings.load({}, env)
    assert s.port == 4000
    assert Settings.load({}, {}).port == 3000
    with pytest.raises(ValueError, match="LIVEPEER_EMULATOR_PORT"):
        Settings.load({}, {"LIVEPEER_EMULATOR_PORT": "many"})


def test_missing_ffprobe_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with pytest.raises(ConfigError, match="is not an executable file"):
        media.find_tools(str(tmp_path / "nope"), None)
    monkeypatch.setattr(media.shutil, "which", lambda name: None)
    monkeypatch.setattr(media, "_bundled", lambda name: None)
    with pytest.raises(ConfigError, match="ffprobe was not found: install ffmpeg"):
        media.find_tools(None, None)


def test_probe_mapping_numbers_are_numbers() -> None:
    result = media.to_probe_result(
        {
            "format": {
                "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
                "duration": "2.5",
                "bit_rate": "1000",
            },
            "streams": [
                {
                    "codec_type": "video",
                    "codec_name": "h264",
                    "width": 64,
                    "height": 48,
                    "avg_frame_rate": "30000/1001",
                    "bit_rate": "900",
                    "pix_fmt": "yuv420p",
                    "start_time": "0.000000",
                    "duration": "2.5",
                },
                {
                    "codec_type": "audio",
                    "codec_name": "aac",
                    "channels": 2,
                    "sample_rate": "48000",
                    "bit_rate": "N/A",
                },
                {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}},
                {"codec_type": "data", "codec_name": "bin_data"},
            ],
        }
    )
    assert result.ok and result.media_type == "video"
    spec = result.video_spec
    assert spec == {
        "format": "mp4",
        "duration": 2.5,
        "bitrate": 1000,
        "tracks": [
            {
                "type": "video",
                "codec": "h264",
                "startTime": 0.0,
                "duration": 2.5,
                "bitrate": 900,
                "width": 64,
                "height": 48,
                "pixelFormat": "yuv420p",
                "fps": 29.97,
            },
            {"type": "audio", "codec": "aac", "channels": 2, "sampleRate": 48000},
        ],
    }
    empty = media.to_probe_result({"format": {}, "streams": [{"codec_type": "data"}]})
    assert empty.error == "Failed to probe file: no audio or video tracks found"


def test_parse_json_messages_follow_json_parse() -> None:
    assert parse_json(b"") == {}
    with pytest.raises(BadRequest, match="Unexpected token x in JSON at position 1"):
        parse_json(b"[x]")
    with pytest.raises(BadRequest, match="Unexpected end of JSON input"):
        parse_json(b"[1,")


def test_list_query_defaults() -> None:
    q = parse_list_query({}, {"updatedAt": "u", "createdAt": "c"}, ())
    assert (q.limit, q.offset, q.count) == (20, 0, False)
    assert list(q.order) == [("updatedAt", True), ("createdAt", True)]
    q = parse_list_query(
        {"limit": "0", "cursor": "skip40", "count": ""}, {"updatedAt": "u", "createdAt": "c"}, ()
    )
    assert (q.limit, q.offset, q.count) == (20, 40, False)  # `if (count)`: "" is falsy
