"""Which renditions to make of a source: pure decisions from its videoSpec, no I/O.

The shapes follow Studio and its pipeline (livepeer/catalyst-api `video/profiles.go`): each
rendition is named `<height>p0`, its static MP4 is `static<name>.mp4` and its HLS variant
lives in the folder `<name>`. `emulator.media.Encoder` turns an `OutputPlan` into files.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

OUTPUT_MODES = ("copy", "transcode", "none")
STATIC_MP4_MAX_SECONDS = 120.0  # Studio: short assets (< 2 min) get MP4s, long ones only HLS

# Bump whenever the encoder's commands or the files' layout change: the key names the bytes
# made, and a content-addressed cache would otherwise keep serving the old ones.
OUTPUTS_VERSION = 1

# The HLS variant folder of audio-only media (it has no rendition to be named after).
AUDIO_VARIANT = "audio"

# The default ladder, by the short side of the picture (the height of a landscape source):
# (short side, top bitrate). 360p0 and 720p0 and their bitrates are catalyst-api's current
# defaults; 240p0 at 250 kb/s is catalyst's earlier default; 1080p0 (absent from catalyst's
# defaults) gets 6 Mb/s, the usual figure for 1080p H.264.
LADDER = ((240, 250_000), (360, 1_000_000), (720, 4_000_000), (1080, 6_000_000))
# As catalyst: a rung gets the source's bits per pixel times 1.2, up to the rung's bitrate,
# and never less than 100 kb/s.
BITRATE_FACTOR = 1.2
MIN_VIDEO_BITRATE = 100_000
# What an audio track is assumed to take of a file's bitrate when its own is unknown.
AUDIO_BITRATE_GUESS = 128_000

# Pixel formats every browser's H.264 decoder takes; anything else (10-bit, 4:2:2, 4:4:4) is
# re-encoded even when the codec is already H.264.
BROWSER_PIXEL_FORMATS = ("yuv420p", "yuvj420p")

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class Rendition(NamedTuple):
    name: str  # Studio's profile name, e.g. "360p0"; a safe file name (see _safe_name)
    width: int
    height: int
    video_bitrate: (
        int  # bits/s: the target when transcoding; the source's (or an estimate) when copying
    )
    copy_video: bool  # remux the source's video stream (H.264 in a browser pixel format, same size)
    fps: float | None = None  # None keeps the source's frame rate


class OutputPlan(NamedTuple):
    renditions: tuple[Rendition, ...]  # highest bitrate first; empty for audio-only media
    has_audio: bool
    copy_audio: bool  # the source's audio is AAC: remux it; else transcode it to AAC
    static_mp4: bool  # make static<name>.mp4 for each rendition
    thumbnails: bool  # make thumbnails/thumbnails.vtt + thumbnails/keyframes_<n>.jpg
    duration: float  # seconds, from the probe
    # catalyst-api's default target is 10 s; 6 s is Apple's recommendation and starts playback
    # sooner; the thumbnails come one per segment's length, as catalyst makes one per segment.
    segment_seconds: float = 6.0

    def key(self) -> str:
        """Everything that changes the bytes made, as stable text (for a cache key)."""
        parts = [
            f"v{OUTPUTS_VERSION}",
            f"seg={self.segment_seconds:g}",
            f"mp4={int(self.static_mp4)}",
            f"thumbs={int(self.thumbnails)}",
            f"audio={int(self.has_audio)}{int(self.copy_audio)}",
            f"dur={self.duration:.3f}",
        ]
        for r in self.renditions:
            fps = "src" if r.fps is None else f"{r.fps:g}"
            mode = "copy" if r.copy_video else "x264"
            parts.append(f"{r.name}:{r.width}x{r.height}:{r.video_bitrate}:{mode}:{fps}")
        return "|".join(parts)


def plan_outputs(
    video_spec: dict[str, Any],
    mode: str,
    *,
    profiles: list[dict[str, Any]] | None = None,
    static_mp4: bool | None = None,
) -> OutputPlan | None:
    """The outputs to make of a probed source; None when there is nothing to make.

    `profiles` (the asset's transcode profiles) replace the default ladder in "transcode"
    mode and are ignored in "copy" mode. `static_mp4=True` (the asset's `staticMp4`) asks
    for MP4s of a long asset too; short ones get them anyway, as on Studio.
    """
    if mode not in OUTPUT_MODES:
        raise ValueError(f"unknown output mode {mode!r}: expected one of {OUTPUT_MODES}")
    if mode == "none":
        return None
    tracks = [t for t in video_spec.get("tracks") or [] if isinstance(t, dict)]
    video = next((t for t in tracks if t.get("type") == "video" and _size(t)), None)
    audio = next((t for t in tracks if t.get("type") == "audio"), None)
    if video is None and audio is None:
        return None
    duration = _number(video_spec.get("duration")) or 0.0
    renditions: list[Rendition] = []
    if video is not None:
        if mode == "copy":
            renditions = [_source_rendition(video, video_spec, audio)]
        elif profiles:
            renditions = _from_profiles(video, profiles)
        else:
            renditions = _ladder(video, _video_bitrate(video, video_spec, audio))
    renditions = _unique_names(sorted(renditions, key=lambda r: -r.video_bitrate))
    has_video = bool(renditions)
    return OutputPlan(
        renditions=tuple(renditions),
        has_audio=audio is not None,
        copy_audio=audio is not None and audio.get("codec") == "aac",
        static_mp4=has_video and (duration < STATIC_MP4_MAX_SECONDS or static_mp4 is True),
        thumbnails=has_video,
        duration=duration,
    )


def _source_rendition(
    video: dict[str, Any], spec: dict[str, Any], audio: dict[str, Any] | None
) -> Rendition:
    """ "copy" mode: one rendition at the source's size, remuxed when browsers can play it."""
    width, height = _size(video) or (0, 0)
    source_bitrate = _video_bitrate(video, spec, audio)
    pixel_format = video.get("pixelFormat")
    if video.get("codec") == "h264" and (
        pixel_format is None or pixel_format in BROWSER_PIXEL_FORMATS
    ):
        bitrate = source_bitrate or _bitrate_for(width, height, None, width * height)
        return Rendition(f"{height}p0", width, height, bitrate, copy_video=True)
    width, height = _even(width), _even(height)
    return Rendition(
        f"{height}p0",
        width,
        height,
        _bitrate_for(width, height, source_bitrate, width * height),
        copy_video=False,
    )


def _ladder(video: dict[str, Any], source_bitrate: int | None) -> list[Rendition]:
    """Studio's default ladder, never above the source; rungs are by the short side."""
    width, height = _size(video) or (0, 0)
    short = min(width, height)
    source_pixels = width * height
    out: list[Rendition] = []
    for rung, _cap in LADDER:
        if rung > short:
            break
        w, h = _scaled(width, height, rung)
        out.append(
            Rendition(f"{rung}p0", w, h, _bitrate_for(w, h, source_bitrate, source_pixels), False)
        )
    # A source between two rungs (or under the lowest) also gets a rendition at its own size,
    # as catalyst always adds one; above the top rung, the top rung is the best there is.
    if short < LADDER[-1][0] and short not in (rung for rung, _ in LADDER):
        w, h = _even(width), _even(height)
        out.append(
            Rendition(f"{h}p0", w, h, _bitrate_for(w, h, source_bitrate, source_pixels), False)
        )
    return out


def _from_profiles(video: dict[str, Any], profiles: list[dict[str, Any]]) -> list[Rendition]:
    """The asset's own profiles. Like catalyst's transcoder, the picture keeps its aspect
    ratio: the profile's height is kept and the width follows (a portrait source swaps a
    landscape profile's box), and a profile with only a bitrate keeps the source's size."""
    width, height = _size(video) or (0, 0)
    out: list[Rendition] = []
    for index, profile in enumerate(profiles):
        pw = int(_number(profile.get("width")) or 0)
        ph = int(_number(profile.get("height")) or 0)
        if height > width and pw > ph:
            pw, ph = ph, pw
        if ph > 0:
            h = _even(ph)
            w = _even(round(ph * width / height))
        elif pw > 0:
            w = _even(pw)
            h = _even(round(pw * height / width))
        else:
            w, h = _even(width), _even(height)
        bitrate = int(_number(profile.get("bitrate")) or 0) or _bitrate_for(w, h, None, 1)
        fps = _number(profile.get("fps"))
        den = _number(profile.get("fpsDen")) or 1.0
        name = str(profile.get("name") or f"{h}p{index}")
        out.append(Rendition(_safe_name(name), w, h, bitrate, False, fps / den if fps else None))
    return out


def _bitrate_for(width: int, height: int, source_bitrate: int | None, source_pixels: int) -> int:
    """catalyst's rule: the source's bits per pixel times 1.2, capped by the nearest rung."""
    short = min(width, height)
    cap = next((c for rung, c in LADDER if rung >= short), LADDER[-1][1])
    if not source_bitrate or source_pixels <= 0:
        return cap
    relative = BITRATE_FACTOR * width * height * source_bitrate / source_pixels
    return int(min(cap, max(MIN_VIDEO_BITRATE, relative)))


def _video_bitrate(
    video: dict[str, Any], spec: dict[str, Any], audio: dict[str, Any] | None
) -> int | None:
    """The source's video bitrate: its track's, else the file's less the audio's."""
    own = _number(video.get("bitrate"))
    if own:
        return int(own)
    total = _number(spec.get("bitrate"))
    if not total:
        return None
    audio_bitrate = (_number(audio.get("bitrate")) or AUDIO_BITRATE_GUESS) if audio else 0.0
    return int(max(total - audio_bitrate, total / 2))


def _scaled(width: int, height: int, short: int) -> tuple[int, int]:
    """The size whose short side is `short`, with the source's aspect ratio, even sides."""
    if width >= height:
        return _even(round(short * width / height)), _even(short)
    return _even(short), _even(round(short * height / width))


def _even(value: float) -> int:
    """Rounded down to even (x264 with 4:2:0 needs even sides), never below 2."""
    return max(2, int(value) // 2 * 2)


def _size(track: dict[str, Any]) -> tuple[int, int] | None:
    width, height = _number(track.get("width")), _number(track.get("height"))
    if not width or not height or width < 1 or height < 1:
        return None
    return int(width), int(height)


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return float(raw) if raw == raw and raw not in (float("inf"), float("-inf")) else None


def _safe_name(name: str) -> str:
    """A profile name made safe as a folder and file name: profile names are user input
    (1-500 characters of anything), and must never reach outside the asset's folder."""
    # No leading "-" (ffmpeg would read the file name as an option) or "." (hidden, "..").
    cleaned = _UNSAFE.sub("_", name).lstrip("-.")[:64]
    return cleaned if cleaned and cleaned != AUDIO_VARIANT else f"r_{cleaned}"


def _unique_names(renditions: list[Rendition]) -> list[Rendition]:
    seen: set[str] = set()
    out: list[Rendition] = []
    for r in renditions:
        name, n = r.name, 1
        while name in seen:
            name, n = f"{r.name}_{n}", n + 1
        seen.add(name)
        out.append(r if name == r.name else r._replace(name=name))
    return out
