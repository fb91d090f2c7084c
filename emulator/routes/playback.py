"""GET /api/playback/{id} (getPlaybackInfo) and the media files its URLs point at."""

from __future__ import annotations

from aiohttp import web

from emulator.models import Doc
from emulator.routes.common import ASSETS, json_response, origin, public
from emulator.wire import download_url, media_url

CONTENT_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "matroska": "video/x-matroska",
    "webm": "video/webm",
    "mpegts": "video/mp2t",
    "avi": "video/x-msvideo",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
}


@public
async def get_playback_info(request: web.Request) -> web.Response:
    doc, _ = await request.app[ASSETS].playable(request.match_info["id"])
    return json_response(
        {
            "type": "vod",
            "meta": {
                "playbackPolicy": doc.get("playbackPolicy"),
                "source": _sources(doc, origin(request)),
            },
        }
    )


def _sources(doc: Doc, base: str) -> list[Doc]:
    """The source file stands in for Studio's MP4 rendition and HLS until real HLS exists."""
    spec = doc.get("videoSpec") or {}
    video: Doc = next((t for t in spec.get("tracks", []) if t.get("type") == "video"), {})
    mp4: Doc = {"hrn": "MP4", "type": "html5/video/mp4", "url": download_url(base, doc)}
    for key, value in (
        ("size", doc.get("size")),
        ("width", video.get("width")),
        ("height", video.get("height")),
        ("bitrate", spec.get("bitrate")),
    ):
        if value is not None:
            mp4[key] = value
    hls = {
        "hrn": "HLS (TS)",
        "type": "html5/application/vnd.apple.mpegurl",
        "url": media_url(base, doc["playbackId"]),
    }
    return [mp4, hls]


@public
async def get_media(request: web.Request) -> web.StreamResponse:
    """playbackUrl and downloadUrl: the source file, with Range support."""
    doc, path = await request.app[ASSETS].playable(request.match_info["playbackId"])
    fmt = (doc.get("videoSpec") or {}).get("format")
    content_type = CONTENT_TYPES.get(str(fmt), "application/octet-stream")
    return web.FileResponse(path, headers={"Content-Type": content_type})
