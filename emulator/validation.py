"""Request-body validation that fails the way Studio's Ajv middleware fails.

Studio validates bodies against its JSON Schema with Ajv (no allErrors, no coercion) and
answers 422 with the first error object, JSON-encoded, as the only message. This module
holds our own statement of the few payload schemas the Assets API takes, and a small
validator for the JSON Schema subset they use, producing Ajv-shaped error objects.
"""

from __future__ import annotations

import json
import re
from typing import Any

from emulator.errors import UnprocessableEntity

Schema = dict[str, Any]

_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$")


class SchemaError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def _fail(path: str, schema_path: str, keyword: str, params: dict[str, Any], message: str) -> None:
    raise SchemaError(
        {
            "instancePath": path,
            "schemaPath": schema_path,
            "keyword": keyword,
            "params": params,
            "message": message,
        }
    )


def check(value: Any, schema: Schema, path: str = "", spath: str = "#") -> None:
    """Raise SchemaError for the first violation, in the order Ajv checks keywords."""
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(_TYPE_CHECKS[t](value) for t in names):
            _fail(
                path,
                f"{spath}/type",
                "type",
                {"type": ",".join(names)},
                f"must be {','.join(names)}",
            )
    if "enum" in schema and value not in schema["enum"]:
        _fail(
            path,
            f"{spath}/enum",
            "enum",
            {"allowedValues": schema["enum"]},
            "must be equal to one of the allowed values",
        )
    if "oneOf" in schema:
        _check_one_of(value, schema["oneOf"], path, spath)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for key, op in (("maximum", "<="), ("minimum", ">=")):
            limit = schema.get(key)
            if limit is not None and not (value <= limit if op == "<=" else value >= limit):
                _fail(
                    path,
                    f"{spath}/{key}",
                    key,
                    {"comparison": op, "limit": limit},
                    f"must be {op} {limit}",
                )
    if isinstance(value, str):
        _check_string(value, schema, path, spath)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], f"{path}/{i}", f"{spath}/items")
    if isinstance(value, dict):
        _check_object(value, schema, path, spath)


def _check_one_of(value: Any, options: list[Schema], path: str, spath: str) -> None:
    first: SchemaError | None = None
    passing = 0
    for i, option in enumerate(options):
        try:
            check(value, option, path, f"{spath}/oneOf/{i}")
            passing += 1
        except SchemaError as exc:
            first = first or exc
    if passing == 0 and first is not None:
        raise first  # Ajv lists the branches' errors before its own; Studio shows the first


def _check_string(value: str, schema: Schema, path: str, spath: str) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        limit = schema["maxLength"]
        _fail(
            path,
            f"{spath}/maxLength",
            "maxLength",
            {"limit": limit},
            f"must NOT have more than {limit} characters",
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        limit = schema["minLength"]
        _fail(
            path,
            f"{spath}/minLength",
            "minLength",
            {"limit": limit},
            f"must NOT have fewer than {limit} characters",
        )
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        _fail(
            path,
            f"{spath}/pattern",
            "pattern",
            {"pattern": pattern},
            f'must match pattern "{pattern}"',
        )
    if schema.get("format") == "uri" and not _URI.match(value):
        _fail(path, f"{spath}/format", "format", {"format": "uri"}, 'must match format "uri"')


def _check_object(value: dict[str, Any], schema: Schema, path: str, spath: str) -> None:
    for name in schema.get("required", ()):
        if name not in value:
            _fail(
                path,
                f"{spath}/required",
                "required",
                {"missingProperty": name},
                f"must have required property '{name}'",
            )
    properties: dict[str, Schema] = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        for name in value:
            if name not in properties:
                _fail(
                    path,
                    f"{spath}/additionalProperties",
                    "additionalProperties",
                    {"additionalProperty": name},
                    "must NOT have additional properties",
                )
    for name, sub in properties.items():
        if name in value:
            check(value[name], sub, f"{path}/{_pointer(name)}", f"{spath}/properties/{name}")


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def validate(body: Any, schema: Schema) -> dict[str, Any]:
    """Return the body when valid; otherwise raise Studio's 422."""
    try:
        check(body, schema)
    except SchemaError as exc:
        raise UnprocessableEntity(json.dumps(exc.error, separators=(",", ":"))) from None
    assert isinstance(body, dict)
    return body


# -- the payloads of the Assets API ---------------------------------------------------------

PLAYBACK_POLICY: Schema = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["public", "jwt", "webhook"]},
        "webhookId": {"type": "string"},
        "webhookContext": {"type": "object"},
        "refreshInterval": {"type": "number"},
        "allowedOrigins": {"type": "array", "items": {"type": "string"}},
    },
}
CREATOR_ID: Schema = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "value"],
            "properties": {
                "type": {"type": "string", "enum": ["unverified"]},
                "value": {"type": "string"},
            },
        },
        {"type": "string"},
    ]
}
IPFS_SPEC: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "nftMetadataTemplate": {"type": "string", "enum": ["file", "player"]},
        "nftMetadata": {"type": "object"},
    },
}
STORAGE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ipfs": {
            "oneOf": [
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"spec": {"oneOf": [{"type": "null"}, IPFS_SPEC]}},
                },
                {"type": "boolean"},
                {"type": "null"},
            ]
        }
    },
}
TRANSCODE_PROFILE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["bitrate"],
    "properties": {
        "width": {"type": "integer", "minimum": 128},
        "name": {"type": "string", "minLength": 1, "maxLength": 500},
        "height": {"type": "integer", "minimum": 128},
        "bitrate": {"type": "integer", "minimum": 400},
        "quality": {"type": "integer", "minimum": 0, "maximum": 44},
        "fps": {"type": "integer", "minimum": 0},
        "fpsDen": {"type": "integer", "minimum": 1},
        "gop": {"type": "string"},
        "profile": {
            "type": "string",
            "enum": ["H264Baseline", "H264Main", "H264High", "H264ConstrainedHigh"],
        },
        "encoder": {"type": "string", "enum": ["H.264", "HEVC", "VP8", "VP9"]},
    },
}
_NEW_ASSET_PROPERTIES: dict[str, Schema] = {
    "name": {"type": "string"},
    "staticMp4": {"type": "boolean"},
    "playbackPolicy": PLAYBACK_POLICY,
    "creatorId": CREATOR_ID,
    "storage": STORAGE,
    "encryption": {
        "type": "object",
        "additionalProperties": False,
        "required": ["encryptedKey"],
        "properties": {"encryptedKey": {"type": "string"}},
    },
    "c2pa": {"type": "boolean"},
    "profiles": {"type": ["array", "null"], "items": TRANSCODE_PROFILE},
    "targetSegmentSizeSecs": {"type": "number"},
}
NEW_ASSET: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": _NEW_ASSET_PROPERTIES,
}
NEW_ASSET_FROM_URL: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "url"],
    "properties": {
        **_NEW_ASSET_PROPERTIES,
        "url": {"type": "string", "format": "uri", "pattern": "^(https?|ipfs|ar)://"},
    },
}
ASSET_PATCH: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "creatorId": CREATOR_ID,
        "playbackPolicy": PLAYBACK_POLICY,
        "storage": STORAGE,
    },
}
CLOCK_ADVANCE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        # Up to ten years at a time: enough for any test, and it keeps times in range.
        "seconds": {"type": "number", "minimum": 0, "maximum": 315_360_000},
        "next": {"type": "boolean"},
        "all": {"type": "boolean"},
    },
}
RESET: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"all": {"type": "boolean"}},
}
