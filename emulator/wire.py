"""Studio's JSON on the wire: parsing bodies and list queries, shaping outgoing objects.

Outgoing objects are camelCase with integer-millisecond timestamps; optional fields are
omitted, never null (the TypeScript SDK rejects null where the schema says "optional").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

from emulator.errors import ApiError, BadRequest, UnprocessableEntity
from emulator.models import Doc
from emulator.store import Filter, ListQuery

MAX_JSON_BYTES = 100 * 1024  # express body-parser's default limit, which Studio keeps
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_OFFSET = 2**53
# Deeper JSON is refused before it is stored: Studio's documents are a few levels deep, and
# deeply nested values break recursive code (json, validation) long after they were saved.
MAX_JSON_DEPTH = 100

# Never returned, though accepted on input (Studio's cleanWriteOnlyResponse).
# Stored, never returned (Studio's cleanWriteOnlyResponse): `files` are the outputs made
# (emulator/outputs.py), `sourcePlaybackReady` says they may be played before `ready`.
WRITE_ONLY = ("staticMp4", "c2pa", "encryption", "files", "sourcePlaybackReady")
HLS_MANIFEST = "catalyst_hls_manifest"  # the `files` types Studio's playback reads
STATIC_MP4 = "static_transcoded_mp4"
THUMBNAILS_VTT = "thumbnails_vtt"

DOWNLOAD_EXTENSIONS = {"mp4": "mp4", "mov": "mov", "matroska": "mkv", "mpegts": "ts", "avi": "avi"}


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body; errors carry JSON.parse's wording, as Studio's 400 does.

    Stricter than Python's json in what JSON.parse refuses too (NaN, Infinity), and in
    what would break later (numbers past a double's range, nesting deeper than
    MAX_JSON_DEPTH), so nothing stored can fail to load or to serialize again.
    """
    if not raw.strip():
        return {}
    try:
        # As json.loads decodes bytes: UTF-8 (with or without a BOM), UTF-16 or UTF-32.
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except UnicodeDecodeError:
        raise BadRequest("Unexpected token in JSON at position 0") from None
    return loads(text)


class _NotJson(ValueError):
    """A constant or number that json accepts and JSON.parse does not (or reads as ±Infinity)."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(text)
    return value


def _bounded_int(text: str) -> int:
    # Past a double's range JSON.parse reads Infinity; past 4,300 digits Python's int()
    # refuses (a ValueError that used to escape as a 500).
    if len(text) > 300 and not math.isfinite(float(text)):
        raise _NotJson(text)
    return int(text)


def loads(text: str) -> Any:
    """json.loads within JSON.parse's limits: BadRequest in JSON.parse's words for what it
    refuses, UnprocessableEntity for nesting deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise UnprocessableEntity(_TOO_DEEP) from None
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise BadRequest("Unexpected end of JSON input") from None
        raise BadRequest(
            f"Unexpected token {text[exc.pos]} in JSON at position {exc.pos}"
        ) from None
    except _NotJson as exc:
        raise BadRequest(_not_json(text, str(exc))) from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise UnprocessableEntity(_TOO_DEEP)
    return value


_TOO_DEEP = f"JSON is nested too deeply: more than {MAX_JSON_DEPTH} levels of arrays and objects"
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def _not_json(text: str, token: str) -> str:
    """JSON.parse's message for the first NaN/Infinity outside a string, or for a number
    out of range (which JSON.parse would have read as Infinity)."""
    if token in ("NaN", "Infinity", "-Infinity"):
        for match in _STRING_OR_CONSTANT.finditer(text):
            if match.group(1):
                # JSON.parse stops at the letter: after the sign for -Infinity.
                at = match.start(1) + (1 if match.group(1).startswith("-") else 0)
                return f"Unexpected token {text[at]} in JSON at position {at}"
        return f"Unexpected token {token.lstrip('-')[0]} in JSON"
    shown = token if len(token) <= 24 else f"{token[:20]}… ({len(token)} characters)"
    return f"number out of range in JSON (past what a double holds): {shown}"


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def dumps(value: Any) -> str:
    # ASCII-escaped: lone surrogates that JSON.parse accepts (and so Studio stores) must
    # still serialize, and escaping keeps json's fast C encoder. No bare NaN/Infinity,
    # which no JSON.parse reads: better a loud error here than a list nobody can parse.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def media_url(origin: str, playback_id: str) -> str:
    return f"{origin}/asset/{playback_id}/video"


def output_url(origin: str, playback_id: str, path: str) -> str:
    """Where an output file is served: Studio's `<publicUrl>/<playbackId>/<path>`, with
    the public URL's `/hls` (vod-cdn.lp-playback.studio/…/catalyst-vod-com/hls)."""
    return f"{origin}/hls/{playback_id}/{path}"


def output_file(doc: Doc, kind: str) -> Doc | None:
    """The asset's first output file of a `files` type."""
    return next((f for f in doc.get("files") or [] if f.get("type") == kind), None)


def playback_url(origin: str, doc: Doc) -> str | None:
    """The HLS playlist once it exists (Studio's getPlaybackUrl); on `--outputs none`,
    the uploaded file once the asset is ready."""
    manifest = output_file(doc, HLS_MANIFEST)
    if manifest is not None:
        return output_url(origin, doc["playbackId"], manifest["path"])
    if doc["status"]["phase"] == "ready":
        return media_url(origin, doc["playbackId"])
    return None


def download_url(origin: str, doc: Doc) -> str:
    fmt = (doc.get("videoSpec") or {}).get("format")
    ext = DOWNLOAD_EXTENSIONS.get(str(fmt))
    base = media_url(origin, doc["playbackId"])
    return f"{base}/download.{ext}" if ext else base


def asset_out(doc: Doc, origin: str, *, details: bool) -> Doc:
    """The external form of a stored asset (Studio's toExternalAsset)."""
    out = {k: v for k, v in doc.items() if k not in WRITE_ONLY and v is not None}
    playback = None if doc.get("deleted") else playback_url(origin, doc)
    if playback is not None:
        out["playbackUrl"] = playback
    if doc["status"]["phase"] == "ready":
        out["downloadUrl"] = download_url(origin, doc)
    spec = out.get("videoSpec")
    if spec is not None and not details:
        out["videoSpec"] = {k: v for k, v in spec.items() if k != "tracks"}
    return out


def task_out(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if v is not None}


def parse_list_query(
    query: Mapping[str, str], fields: Collection[str], direct: tuple[str, ...]
) -> ListQuery:
    """limit/cursor/order/filters/count plus the exact-match shortcuts a list accepts."""
    limit = ascii_int(query.get("limit", ""), MAX_LIMIT)
    limit = DEFAULT_LIMIT if limit is None or limit < 1 else limit
    cursor = query.get("cursor", "")
    # Like any cursor that is not skip<N>: the list from its start. The cap lies past any
    # real list and keeps SQLite's integers in range.
    offset = ascii_int(cursor[4:], MAX_OFFSET) if cursor.startswith("skip") else None
    offset = offset or 0
    filters = [Filter(name, "eq", query[name]) for name in direct if query.get(name)]
    if query.get("filters"):
        filters.extend(_parse_filters(query["filters"], fields))
    order = _parse_order(query.get("order"), fields)
    return ListQuery(
        limit=limit, offset=offset, filters=filters, order=order, count="count" in query
    )


def ascii_int(text: str, cap: int) -> int | None:
    """A whole number written in ASCII digits, at most `cap`; None for anything else.

    str.isdigit and int() also take other scripts' digits ("²", "①", "١٢") and int()
    refuses more than 4,300 digits with a ValueError, so neither reads numbers from a URL.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    # More digits than the cap has are past it: int() never sees a huge string.
    return cap if len(text) > len(str(cap)) else min(int(text), cap)


def _parse_order(raw: str | None, fields: Collection[str]) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in (raw or "").split(","):
        name, _, desc = part.strip().partition("-")
        if name in fields:
            order.append((name, desc != "false"))
    return order or [("updatedAt", True), ("createdAt", True)]


def _parse_filters(raw: str, fields: Collection[str]) -> list[Filter]:
    try:
        items = loads(raw)
    except ApiError as exc:
        raise BadRequest(f"error parsing filters: {exc.message}") from None
    if not isinstance(items, list):
        raise BadRequest("error parsing filters: filters must be an array")
    out: list[Filter] = []
    for item in items:
        if not isinstance(item, dict) or "id" not in item or "value" not in item:
            raise BadRequest("error parsing filters: each filter needs an id and a value")
        name, value = item["id"], item["value"]
        if not isinstance(name, str) or name not in fields:
            raise BadRequest(f"error parsing filters: unknown filter field {name}")
        if isinstance(value, dict):
            for op, bound in value.items():
                if op not in ("gt", "gte", "lt", "lte") or not _is_number(bound):
                    raise BadRequest(f"error parsing filters: bad condition {op} on {name}")
                out.append(Filter(name, op, _filter_value(name, bound)))
        elif name == "name":
            text = str(_filter_value(name, value))
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(Filter(name, "like", f"%{escaped}%"))
        else:
            out.append(Filter(name, "eq", _filter_value(name, value)))
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _filter_value(name: str, value: Any) -> Any:
    """A value SQLite can compare: a scalar, a 64-bit integer, text that is valid UTF-8.
    Anything else would fail in the database (a 500), so it is refused here."""
    if isinstance(value, (list, dict)):
        raise BadRequest(
            f"error parsing filters: the value of {name} must be a string, number or boolean"
        )
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise BadRequest(
            f"error parsing filters: the value of {name} is out of range (a 64-bit integer at most)"
        )
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            raise BadRequest(
                f"error parsing filters: the value of {name} is not valid Unicode "
                "(a lone surrogate escape such as \\ud800)"
            ) from None
    return value
