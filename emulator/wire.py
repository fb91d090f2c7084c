"""Studio's JSON on the wire: parsing bodies and list queries, shaping outgoing objects.

Outgoing objects are camelCase with integer-millisecond timestamps; optional fields are
omitted, never null (the TypeScript SDK rejects null where the schema says "optional").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple

from emulator.errors import BadRequest, UnprocessableEntity
from emulator.jsvalues import (
    UNDEFINED,
    JsError,
    decode_uri_component,
    js_string,
    json_parse,
    parse_int,
    quote,
    stringify,
)
from emulator.models import Doc
from emulator.store import Filter, ListQuery

MAX_JSON_BYTES = 100 * 1024  # express body-parser's default limit, which Studio keeps
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
# Studio's asset and task lists when ?order is empty (webhook lists have none: `id ASC`).
DEFAULT_ORDER = "updatedAt-true,createdAt-true"
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
    ipfs = (out.get("storage") or {}).get("ipfs") or {}
    if ipfs.get("cid"):  # Studio's assetWithIpfsUrls
        with_urls = {**ipfs, **ipfs_urls(origin, ipfs["cid"])}
        if (ipfs.get("nftMetadata") or {}).get("cid"):
            nft = ipfs["nftMetadata"]
            with_urls["nftMetadata"] = {**nft, **ipfs_urls(origin, nft["cid"])}
        out["storage"] = {**out["storage"], "ipfs": with_urls}
    return out


def ipfs_urls(origin: str, cid: str) -> Doc:
    """Studio's withIpfsUrls, with the emulator's own gateway (routes/ipfs.py)."""
    return {"url": f"ipfs://{cid}", "gatewayUrl": f"{origin}/ipfs/{cid}"}


def task_out(doc: Doc, origin: str | None = None) -> Doc:
    out = {k: v for k, v in doc.items() if v is not None}
    exported = ((out.get("output") or {}).get("export") or {}).get("ipfs")
    if origin is not None and exported:  # Studio's taskWithIpfsUrls
        urls: Doc = {}
        for prefix, key in (("videoFile", "videoFileCid"), ("nftMetadata", "nftMetadataCid")):
            if exported.get(key):
                found = ipfs_urls(origin, exported[key])
                urls[f"{prefix}Url"] = found["url"]
                urls[f"{prefix}GatewayUrl"] = found["gatewayUrl"]
        out["output"] = {**out["output"], "export": {"ipfs": {**exported, **urls}}}
    return out


def parse_list_query(
    query: Mapping[str, str] | str,
    fields: Collection[str],
    direct: tuple[str, ...],
    default_order: str = DEFAULT_ORDER,
) -> ListQuery:
    """A list's limit/cursor/order/filters/count as Studio's controllers read them
    (asset.ts, task.ts, webhook.ts `app.get("/")`; helpers.ts parseFilters/parseOrder;
    store/table.ts find), plus the exact-match shortcuts (`direct`) a list accepts.
    `query`: the raw query string (read as Express does), or values already decoded.

    Where Studio answers 500 (a shortcut decodeURIComponent refuses; Postgres refuses
    the query it builds) the emulator answers 400 and says what was wrong: bad input gets
    a clear error, never a 500. Errors come in Studio's order: a shortcut it cannot
    decode, the filters' own errors (Studio's 400 texts), then what Postgres would refuse.
    """
    if isinstance(query, str):
        query = studio_query(query)
    shortcuts = []
    for name in direct:
        if name in query:
            try:
                shortcuts.append({"id": name, "value": decode_uri_component(query[name])})
            except JsError as exc:  # thrown outside parseFilters' try: Studio's 500
                raise BadRequest(f"error parsing {name}: {exc}") from None
    known = {*fields, "user.email"}
    filters, refused = _parse_filters(query.get("filters", ""), known)
    problem = None if refused is None else f"error parsing filters: {refused.detail}"
    if direct:  # asset.ts: parseFilters(fieldsMap, JSON.stringify(fieldFilters))
        more, more_refused = _parse_filters(stringify(shortcuts), known)
        filters = filters + more
        if problem is None and more_refused is not None:
            problem = f"error parsing {more_refused.field}: {more_refused.detail}"
    # `if (!order) order = …`; parseOrder drops what it cannot read; table.ts find
    # falls back to its DEFAULT_SORT when nothing is left.
    order = _parse_order(query.get("order") or default_order, known) or [("id", False)]
    if problem is None and "user.email" in {name for name, _ in order}:
        problem = f"error parsing order: {_NO_USERS}"
    cursor = query.get("cursor", "")
    offset, after = 0, None
    if "skip" in cursor:  # table.ts: `OFFSET ${cursor.replace("skip", "")}`
        offset, wrong = _offset(cursor.replace("skip", "", 1))
        if problem is None and wrong:
            shown = cursor if len(cursor) <= 40 else cursor[:40] + "…"
            problem = f"invalid cursor {quote(shown)}: {wrong}"
    elif cursor:
        after = cursor  # table.ts: `data->>'id' > ${cursor}`
    if problem is not None:
        raise BadRequest(problem)
    return ListQuery(
        limit=_limit(query.get("limit", "")),
        offset=offset,
        after=after,
        filters=filters,
        order=order,
        count=bool(query.get("count")),  # `if (count)`: any non-empty value, even "0"
    )


def studio_query(raw_query: str) -> dict[str, str]:
    """The query string as Studio's handlers see it: Express's qs decoding ('+' is a
    space; an escape decodeURIComponent refuses stays as written), each value a string
    (toStringValues; a repeated name's values joined with commas). Brackets in names
    (`a[b]=c`), which qs turns into objects, are taken literally."""
    values: dict[str, list[str]] = {}
    for part in raw_query.split("&"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        values.setdefault(_qs_decode(name), []).append(_qs_decode(value) if eq else "")
    return {name: ",".join(found) for name, found in values.items()}


def _qs_decode(text: str) -> str:
    text = text.replace("+", " ")
    try:
        return decode_uri_component(text)
    except JsError:
        return text


def _limit(raw: str) -> int:
    """table.ts parseLimit after `isNaN(parseInt(limit))`: parseInt's reading ("5abc" is
    5, "0x10" is 16), 20 below 1 or unreadable, at most 1000."""
    limit = parse_int(raw)
    return DEFAULT_LIMIT if limit is None or limit < 1 else min(limit, MAX_LIMIT)


def _parse_order(raw: str, fields: Collection[str]) -> list[tuple[str, bool]]:
    """helpers.ts parseOrder: `field-true` is descending, `field-<anything else>`
    ascending; parts without exactly one dash, or naming no field, are dropped."""
    order: list[tuple[str, bool]] = []
    for part in raw.split(","):
        pieces = part.split("-")
        if len(pieces) == 2 and pieces[0] in fields:
            order.append((pieces[0], pieces[1] == "true"))
    return order


def _offset(text: str) -> tuple[int, str]:
    """The rows a skip cursor skips, or why Postgres would refuse it as an `OFFSET`
    (a bigint, surrounding whitespace allowed, not negative)."""
    found = _PG_BIGINT.fullmatch(text)
    if found is None:
        return 0, "not a whole number of rows to skip"
    digits = found.group(1).lstrip("+-").lstrip("0")
    # Twenty characters hold any bigint; int() refuses past 4,300 digits.
    if len(digits) > 20 or int(found.group(1)) >= 2**63:
        return 0, "more rows to skip than a bigint holds"
    if int(found.group(1)) < 0:
        return 0, "a negative number of rows to skip"
    return int(found.group(1)), ""


class _Refusal(NamedTuple):
    """A filter Postgres would refuse (Studio's 500): the field, and what is wrong."""

    field: str
    detail: str


def _parse_filters(raw: str, fields: Collection[str]) -> tuple[list[Filter], _Refusal | None]:
    """helpers.ts parseFilters: the filters, and the first one Postgres would refuse.
    Its exceptions become 400 `error parsing filters: <Name>: <message>`."""
    if not raw:
        return [], None
    try:
        items = json_parse(decode_uri_component(raw))
        if not isinstance(items, list):
            raise JsError("Error", "must be an array")
        out: list[Filter | _Refusal] = []
        for item in items:
            out.extend(_filter(item, fields))
    except JsError as exc:
        raise BadRequest(f"error parsing filters: {exc}") from None
    refused = next((f for f in out if isinstance(f, _Refusal)), None)
    return [f for f in out if isinstance(f, Filter)], refused


# Object.prototype's names: `fieldsMap[id]` finds a function there, which is neither a
# column nor a {val, type} entry, so parseFilters skips the filter without a word.
_PROTOTYPE_NAMES = frozenset(
    [
        "constructor",
        "__proto__",
        "toString",
        "toLocaleString",
        "valueOf",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
    ]
)
_INT_FIELDS = frozenset({"createdAt", "updatedAt"})  # {type: "int"}: data->'x', jsonb
_FULL_TEXT_FIELDS = frozenset({"name"})  # {type: "full-text"}: ILIKE
_JSONB_FIELDS = frozenset({"blocking", "deleted"})  # webhook.ts: data->'x', a jsonb column
_COMPARISONS = ("gt", "gte", "lt", "lte")  # "eq" falls through to the default: refused


def _filter(item: Any, fields: Collection[str]) -> list[Filter | _Refusal]:
    """One element of the filters array (a _Refusal: Postgres would refuse it)."""
    if item is None:
        raise JsError("TypeError", "Cannot read properties of null (reading 'id')")
    if not isinstance(item, (dict, list)):
        raise JsError(
            "TypeError", f"Cannot use 'in' operator to search for 'value' in {js_string(item)}"
        )
    name = js_string(item.get("id", UNDEFINED) if isinstance(item, dict) else UNDEFINED)
    if isinstance(item, list) or "value" not in item:
        raise JsError("Error", f'missing filter value for id "{name}"')
    if name in _PROTOTYPE_NAMES:
        return []
    if name not in fields:
        raise JsError("Error", f'unknown field: "{name}"')
    if name == "user.email":  # in Studio's fieldsMap, but only admin lists join users
        return [_Refusal(name, _NO_USERS)]
    try:
        return _value_filters(name, item["value"])
    except RecursionError:  # node-postgres and JSON.stringify recurse through values too
        return [_Refusal(name, f"the value of {name} nests arrays or objects too deeply")]


def _value_filters(name: str, value: Any) -> list[Filter | _Refusal]:
    if name in _FULL_TEXT_FIELDS:
        # `ILIKE ${"%" + value + "%"}`: % and _ in the value stay wildcards.
        pattern = _pg_text("%" + js_string(value) + "%")
        return [_has_nul(name) if pattern is None else Filter(name, "like", pattern)]
    if name in _INT_FIELDS and isinstance(value, dict):
        out: list[Filter | _Refusal] = []
        for op, bound in value.items():
            if op not in _COMPARISONS:
                raise JsError("Error", f'unknown comparison: "{op}"')
            out.append(_jsonb_filter(name, op, bound))
        return out
    if name in _INT_FIELDS or name in _JSONB_FIELDS:
        return [_jsonb_filter(name, "eq", value)]
    text = _pg_param(value)
    if text is None:
        return [Filter(name, "none", None)]  # `= NULL` matches nothing
    text = _pg_text(text)
    return [_has_nul(name) if text is None else Filter(name, "eq", text)]


_NO_USERS = 'unknown field: "user.email" (Studio has it in admin lists only)'


def _has_nul(name: str) -> _Refusal:
    return _Refusal(name, f'{name} cannot contain a NUL character ("\\u0000")')


def _not_jsonb(name: str, op: str, value: Any) -> _Refusal:
    """What a field compared as jsonb takes, and the value Postgres would refuse."""
    if name in _JSONB_FIELDS:
        label, wanted = name, "true or false"
    elif op == "eq":
        label, wanted = name, 'a number or {"gt"|"gte"|"lt"|"lte": number}'
    else:
        label, wanted = f"{name}.{op}", "a number"
    if isinstance(value, float) and not math.isfinite(value):
        shown = f"{js_string(value)} (past a double's range)"
    else:
        shown = stringify(value)
        shown = shown if len(shown) <= 60 else shown[:60] + "…"
    return _Refusal(name, f"{label} takes {wanted}, not {shown}")


_PG_BIGINT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*")
_LONE_SURROGATE = r"[\ud800-\udfff]"  # compiled on first use, as jsvalues._NEEDS_ESCAPE
_JSON_RANK = {type(None): 0, str: 1, bool: 3, list: 4, dict: 5}  # jsonb's order; numbers: 2


def _pg_param(value: Any) -> str | None:
    """node-postgres's prepareValue: the text Postgres receives (None: SQL NULL)."""
    if value is None:
        return None
    if isinstance(value, list):
        return _pg_array(value)
    if isinstance(value, dict):
        return stringify(value)
    return js_string(value)


def _pg_array(items: list[Any]) -> str:
    def element(item: Any) -> str:
        if item is None:
            return "NULL"
        if isinstance(item, list):
            return _pg_array(item)
        text = _pg_param(item) or ""
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return "{" + ",".join(element(i) for i in items) + "}"


def _pg_text(text: str) -> str | None:
    """Text as Postgres stores it: UTF-8 (Node writes a lone surrogate as U+FFFD); None
    for what it refuses (a NUL character)."""
    return None if "\x00" in text else re.sub(_LONE_SURROGATE, "\ufffd", text)


def _jsonb_int(text: str) -> int | float:
    return int(text) if len(text) <= 300 else float(text)


def _jsonb_filter(name: str, op: str, value: Any) -> Filter | _Refusal:
    """`data->'x' <op> $1`: the parameter is read as jsonb, and jsonb compares across
    types (null < string < number < boolean < array < object). A _Refusal: not jsonb."""
    text = _pg_param(value)
    if text is None:
        return Filter(name, "none", None)  # compared with NULL: no row
    text = _pg_text(text)
    if text is None:
        return _not_jsonb(name, op, value)
    try:
        # jsonb numbers are exact decimals of any length; a double orders them as well
        # against a timestamp, and int() refuses past 4,300 digits.
        bound = json.loads(text, parse_constant=_refuse_constant, parse_int=_jsonb_int)
    except (ValueError, RecursionError):
        return _not_jsonb(name, op, value)
    if isinstance(bound, str) and _pg_text(bound) != bound:
        return _not_jsonb(name, op, value)  # jsonb refuses \u0000 and lone surrogate escapes
    if isinstance(bound, (int, float)) and not isinstance(bound, bool):
        if isinstance(bound, int) and not -(2**63) <= bound < 2**63:
            bound = float(bound)  # past SQLite's integers; as exact as a timestamp needs
        return Filter(name, op, bound)
    if name in _JSONB_FIELDS:  # blocking, deleted: booleans when set at all
        return Filter(name, "eq" if isinstance(bound, (str, bool)) else "none", bound)
    # A timestamp (a number) against another type: jsonb's order decides for every row.
    rank = _JSON_RANK[type(bound)]
    holds = {"eq": False, "gt": rank < 2, "gte": rank < 2, "lt": rank > 2, "lte": rank > 2}
    return Filter(name, "all" if holds[op] else "none", None)
