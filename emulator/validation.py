"""Request-body validation that fails the way Studio's Ajv middleware fails.

Studio validates bodies against its JSON Schema with Ajv (no allErrors, no coercion) and
answers 422 with Ajv's `errors`, each JSON-encoded (middleware/validators.ts validatePost).
Without allErrors Ajv stops at the first failing keyword, so that list has one error,
except under `oneOf`: Ajv tries every branch, keeps each failing branch's errors, and adds
its own `oneOf` error after them. This module holds our own statement of the few payload
schemas the Assets API takes, and a small validator for the JSON Schema subset they use,
producing Ajv-shaped error objects in Ajv's order.
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
    """The errors Ajv reports for one failed validation, in its order."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[-1]["message"])
        self.errors = errors


def _fail(path: str, schema_path: str, keyword: str, params: dict[str, Any], message: str) -> None:
    raise SchemaError(
        [
            {
                "instancePath": path,
                "schemaPath": schema_path,
                "keyword": keyword,
                "params": params,
                "message": message,
            }
        ]
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
                {"type": types},  # Ajv gives a list of types as the list
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
    # Ajv runs every branch and keeps what each failing one reported (its first error, or
    # a nested oneOf's whole list); when none passes, its own error comes last.
    errors: list[dict[str, Any]] = []
    passing = 0
    for i, option in enumerate(options):
        try:
            check(value, option, path, f"{spath}/oneOf/{i}")
            passing += 1
        except SchemaError as exc:
            errors.extend(exc.errors)
    if passing == 0:
        errors.append(
            {
                "instancePath": path,
                "schemaPath": f"{spath}/oneOf",
                "keyword": "oneOf",
                "params": {"passingSchemas": None},
                "message": "must match exactly one schema in oneOf",
            }
        )
        raise SchemaError(errors)


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
    """Return the body when valid; otherwise raise Studio's 422.

    A schema without `"type": "object"` (Studio's new-asset payloads) lets a top-level
    array through, and Studio's handler then reads every field of it as undefined: that
    is an empty object here."""
    try:
        check(body, schema)
    except SchemaError as exc:
        messages = [json.dumps(e, separators=(",", ":")) for e in exc.errors]
        raise UnprocessableEntity(messages[0], messages=messages) from None
    return body if isinstance(body, dict) else {}


# -- the payloads of the Assets API ---------------------------------------------------------

PLAYBACK_POLICY: Schema = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        # lit_signing_condition and its two fields come from Studio's db-schema overlay.
        "type": {"type": "string", "enum": ["public", "jwt", "webhook", "lit_signing_condition"]},
        "webhookId": {"type": "string"},
        "webhookContext": {"type": "object"},
        "refreshInterval": {"type": "number"},
        "allowedOrigins": {"type": "array", "items": {"type": "string"}},
        "unifiedAccessControlConditions": {"type": "array", "items": {"type": "object"}},
        "resourceId": {
            "type": "object",
            "additionalProperties": False,
            "required": ["baseUrl", "path", "orgId", "role", "extraData"],
            "properties": {
                name: {"type": "string"}
                for name in ("baseUrl", "path", "orgId", "role", "extraData")
            },
        },
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
# In Studio's order (api-schema, then the db-schema overlay's fields): Ajv checks the
# properties in this order, so it decides which error a body with two comes back with.
_NEW_ASSET_HEAD: dict[str, Schema] = {
    "name": {"type": "string"},
    "staticMp4": {"type": "boolean"},
    "playbackPolicy": PLAYBACK_POLICY,
    "creatorId": CREATOR_ID,
    "storage": STORAGE,
}
_NEW_ASSET_TAIL: dict[str, Schema] = {
    "encryption": {
        "type": "object",
        "additionalProperties": False,
        "required": ["encryptedKey"],
        "properties": {"encryptedKey": {"type": "string"}},
    },
    "c2pa": {"type": "boolean"},
    "profiles": {"type": ["array", "null"], "items": TRANSCODE_PROFILE},
    "targetSegmentSizeSecs": {"type": "number"},
    # Allowed by the db-schema overlay; Studio honours catalystPipelineStrategy for its
    # admins and test users only, so for an API user it is accepted and has no effect.
    "objectStoreId": {"type": "string"},
    "catalystPipelineStrategy": {
        "type": "string",
        "enum": [
            "catalyst",
            "catalyst_ffmpeg",
            "background_external",
            "background_mist",
            "fallback_external",
            "external",
        ],
    },
}
# No "type": "object", as in Studio's schema: a top-level array passes (see validate).
NEW_ASSET: Schema = {
    "additionalProperties": False,
    "required": ["name"],
    "properties": {**_NEW_ASSET_HEAD, **_NEW_ASSET_TAIL},
}
NEW_ASSET_FROM_URL: Schema = {
    "additionalProperties": False,
    "required": ["name", "url"],
    "properties": {
        **_NEW_ASSET_HEAD,
        "url": {"type": "string", "format": "uri", "pattern": "^(https?|ipfs|ar)://"},
        **_NEW_ASSET_TAIL,
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
