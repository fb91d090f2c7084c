"""Studio's JSON on the wire: parsing bodies and list queries, shaping outgoing objects.

Outgoing objects are camelCase with integer-millisecond timestamps; optional fields are
omitted, never null (the TypeScript SDK rejects null where the schema says "optional").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from emulator.errors import BadRequest
from emulator.models import Doc
from emulator.store import Filter, ListQuery

MAX_JSON_BYTES = 100 * 1024  # express body-parser's default limit, which Studio keeps
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
MAX_OFFSET = 2**53

# Never returned, though accepted on input (Studio's cleanWriteOnlyResponse).
WRITE_ONLY = ("staticMp4", "c2pa", "encryption")

DOWNLOAD_EXTENSIONS = {"mp4": "mp4", "mov": "mov", "matroska": "mkv", "mpegts": "ts", "avi": "avi"}


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body; errors carry JSON.parse's wording, as Studio's 400 does."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("Unexpected token in JSON at position 0") from None
    except json.JSONDecodeError as exc:
        text = exc.doc
        if exc.pos >= len(text.rstrip()):
            raise BadRequest("Unexpected end of JSON input") from None
        raise BadRequest(
            f"Unexpected token {text[exc.pos]} in JSON at position {exc.pos}"
        ) from None


def dumps(value: Any) -> str:
    # ASCII-escaped: lone surrogates that JSON.parse accepts (and so Studio stores) must
    # still serialize, and escaping keeps json's fast C encoder.
    return json.dumps(value, separators=(",", ":"))


def media_url(origin: str, playback_id: str) -> str:
    return f"{origin}/asset/{playback_id}/video"


def download_url(origin: str, doc: Doc) -> str:
    fmt = (doc.get("videoSpec") or {}).get("format")
    ext = DOWNLOAD_EXTENSIONS.get(str(fmt))
    base = media_url(origin, doc["playbackId"])
    return f"{base}/download.{ext}" if ext else base


def asset_out(doc: Doc, origin: str, *, details: bool) -> Doc:
    """The external form of a stored asset (Studio's toExternalAsset)."""
    out = {k: v for k, v in doc.items() if k not in WRITE_ONLY and v is not None}
    if doc["status"]["phase"] == "ready":
        out["playbackUrl"] = media_url(origin, doc["playbackId"])
        out["downloadUrl"] = download_url(origin, doc)
    spec = out.get("videoSpec")
    if spec is not None and not details:
        out["videoSpec"] = {k: v for k, v in spec.items() if k != "tracks"}
    return out


def task_out(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if v is not None}


def parse_list_query(
    query: Mapping[str, str], fields: Mapping[str, str], direct: tuple[str, ...]
) -> ListQuery:
    """limit/cursor/order/filters/count plus the exact-match shortcuts a list accepts."""
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        limit = DEFAULT_LIMIT
    limit = DEFAULT_LIMIT if limit < 1 else min(limit, MAX_LIMIT)
    cursor = query.get("cursor", "")
    offset = int(cursor[4:]) if cursor.startswith("skip") and cursor[4:].isdigit() else 0
    offset = min(offset, MAX_OFFSET)  # past any real list; keeps SQLite's integers in range
    filters = [Filter(name, "eq", query[name]) for name in direct if query.get(name)]
    if query.get("filters"):
        filters.extend(_parse_filters(query["filters"], fields))
    order = _parse_order(query.get("order"), fields)
    return ListQuery(
        limit=limit, offset=offset, filters=filters, order=order, count="count" in query
    )


def _parse_order(raw: str | None, fields: Mapping[str, str]) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in (raw or "").split(","):
        name, _, desc = part.strip().partition("-")
        if name in fields:
            order.append((name, desc != "false"))
    return order or [("updatedAt", True), ("createdAt", True)]


def _parse_filters(raw: str, fields: Mapping[str, str]) -> list[Filter]:
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"error parsing filters: {exc}") from None
    if not isinstance(items, list):
        raise BadRequest("error parsing filters: filters must be an array")
    out: list[Filter] = []
    for item in items:
        if not isinstance(item, dict) or "id" not in item or "value" not in item:
            raise BadRequest("error parsing filters: each filter needs an id and a value")
        name, value = item["id"], item["value"]
        if name not in fields:
            raise BadRequest(f"error parsing filters: unknown filter field {name}")
        if isinstance(value, dict):
            for op, bound in value.items():
                if op not in ("gt", "gte", "lt", "lte") or not isinstance(bound, (int, float)):
                    raise BadRequest(f"error parsing filters: bad condition {op} on {name}")
                out.append(Filter(name, op, bound))
        elif name == "name":
            escaped = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            out.append(Filter(name, "like", f"%{escaped}%"))
        else:
            out.append(Filter(name, "eq", value))
    return out
