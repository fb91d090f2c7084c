"""GET /api/playback/{id} (getPlaybackInfo) and the media files its URLs point at: the
playable outputs under /hls/<playbackId>/ and the uploaded file (downloadUrl)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from emulator.errors import NotFound
from emulator.models import Doc
from emulator.routes import access_control
from emulator.routes.common import ASSETS, json_response, optional_tenant, origin, public
from emulator.wire import (
    HLS_MANIFEST,
    STATIC_MP4,
    THUMBNAILS_VTT,
    download_url,
    media_url,
    output_file,
    output_url,
)

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
OUTPUT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mp4": "video/mp4",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
}
# As a CDN sends them: playlists are looked at again now and then, the files they name
# never change (a source's outputs are the same bytes each time they are made).
PLAYLIST_CACHING = "public, max-age=60"
FILE_CACHING = "public, max-age=31536000, immutable"


@public
async def get_playback_info(request: web.Request) -> web.Response:
    playback_id = request.match_info["id"]
    doc, _ = await request.app[ASSETS].playable(
        playback_id,
        early=True,
        cid_lookup=True,
        tenant=optional_tenant(request),
        origin=request.headers.get("Origin"),
    )
    base = origin(request)
    if doc.get("files"):
        if output_file(doc, HLS_MANIFEST) is None:
            raise NotFound(f"No playback URL found for {playback_id}")
        sources = _output_sources(doc, base)
    else:
        sources = _source_file_sources(doc, base)
    return json_response(
        {
            "type": "vod",
            "meta": {"playbackPolicy": doc.get("playbackPolicy"), "source": sources},
        }
    )


def _output_sources(doc: Doc, base: str) -> list[Doc]:
    """Studio's newPlaybackInfo: MP4 renditions by bitrate (highest first), then HLS, then
    the thumbnails' VTT."""
    pid = doc["playbackId"]
    files = doc.get("files") or []
    mp4s = [f for f in files if f.get("type") == STATIC_MP4]
    mp4s.sort(key=lambda f: (f.get("spec") or {}).get("bitrate") or 0, reverse=True)
    sources: list[Doc] = []
    for mp4 in mp4s:
        spec = mp4.get("spec") or {}
        entry: Doc = {
            "hrn": "MP4",
            "type": "html5/video/mp4",
            "url": output_url(base, pid, mp4["path"]),
        }
        for key in ("size", "width", "height", "bitrate"):
            if spec.get(key) is not None:
                entry[key] = spec[key]
        sources.append(entry)
    manifest = output_file(doc, HLS_MANIFEST) or {}
    sources.append(
        {
            "hrn": "HLS (TS)",
            "type": "html5/application/vnd.apple.mpegurl",
            "url": output_url(base, pid, manifest["path"]),
        }
    )
    vtt = output_file(doc, THUMBNAILS_VTT)
    if vtt is not None:
        sources.append(
            {"hrn": "Thumbnails", "type": "text/vtt", "url": output_url(base, pid, vtt["path"])}
        )
    return sources


def _source_file_sources(doc: Doc, base: str) -> list[Doc]:
    """`--outputs none`: the uploaded file stands in for the MP4 rendition and HLS."""
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
async def get_output(request: web.Request) -> web.StreamResponse:
    """A playable output: /hls/<playbackId>/index.m3u8, its variants and segments, the
    static MP4s and the thumbnails. Range, HEAD and ETag as a CDN serves them."""
    grant = await access_control.gate(request, request.match_info["playbackId"])
    path = await request.app[ASSETS].output_file(
        request.match_info["playbackId"], request.match_info["path"]
    )
    suffix = Path(path).suffix
    caching = PLAYLIST_CACHING if suffix in (".m3u8", ".vtt") else FILE_CACHING
    headers = {
        "Content-Type": OUTPUT_TYPES.get(suffix, "application/octet-stream"),
        # A gated file must not sit in a shared cache that others then read from.
        "Cache-Control": caching.replace("public", "private") if grant.gated else caching,
    }
    if suffix in (".m3u8", ".vtt") and access_control.carried(request):
        return await access_control.tokenised_playlist(request, Path(path), headers)
    return web.FileResponse(path, headers=headers)


@public
async def get_media(request: web.Request) -> web.StreamResponse:
    """downloadUrl (and playbackUrl on `--outputs none`): the uploaded file, with Range."""
    await access_control.gate(request, request.match_info["playbackId"])
    doc, path = await request.app[ASSETS].playable(request.match_info["playbackId"])
    fmt = (doc.get("videoSpec") or {}).get("format")
    content_type = CONTENT_TYPES.get(str(fmt), "application/octet-stream")
    return web.FileResponse(path, headers={"Content-Type": content_type})
