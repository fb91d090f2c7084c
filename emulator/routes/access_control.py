"""/api/access-control/signing-key (createSigningKey, getSigningKeys, getSigningKey,
updateSigningKey, deleteSigningKey), and the playback gate as the media routes call it:
the credentials a request carries, and a playlist that carries them on."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from aiohttp import web

from emulator import signing_keys as model
from emulator.access import CARRIED, Credentials, Grant, PlaybackAccess, carry_credentials
from emulator.routes.common import json_response, paged, read_json, tenant
from emulator.signing_keys import SIGNING_KEY_LIST_FIELDS, SigningKeys
from emulator.wire import parse_list_query

SIGNING_KEYS = web.AppKey("signing_keys", SigningKeys)
ACCESS = web.AppKey("access", PlaybackAccess)


def _keys(request: web.Request) -> SigningKeys:
    return request.app[SIGNING_KEYS]


def _id(request: web.Request) -> str:
    return request.match_info["keyId"]


async def create_signing_key(request: web.Request) -> web.Response:
    body = await read_json(request, model.NEW_SIGNING_KEY)
    # 201 as Studio's signing-key.ts answers (its schema, and so the SDKs, say 200).
    return json_response(await _keys(request).create(tenant(request), body), status=201)


async def get_signing_keys(request: web.Request) -> web.Response:
    query = parse_list_query(request.rel_url.raw_query_string, SIGNING_KEY_LIST_FIELDS, ())
    docs, total = await _keys(request).list_keys(tenant(request), query)
    return paged(request, docs, query.limit, query.offset, total)


async def get_signing_key(request: web.Request) -> web.Response:
    return json_response(await _keys(request).get(tenant(request), _id(request)))


async def update_signing_key(request: web.Request) -> web.Response:
    patch = await read_json(request, model.SIGNING_KEY_PATCH)
    await _keys(request).update(tenant(request), _id(request), patch)
    return web.Response(status=204)


async def delete_signing_key(request: web.Request) -> web.Response:
    await _keys(request).delete(tenant(request), _id(request))
    return web.Response(status=204)


# -- the gate, for routes/playback.py ------------------------------------------------------


async def gate(request: web.Request, playback_id: str) -> Grant:
    """Let a media request through, or raise the refusal its player gets. As the CDN
    reads them: the query parameter first, then the header."""
    query, headers = request.query, request.headers
    creds = Credentials(
        jwt=query.get("jwt") or headers.get("Livepeer-Jwt") or None,
        access_key=query.get("accessKey") or headers.get("Livepeer-Access-Key") or None,
        origin=headers.get("Origin"),
        referer=headers.get("Referer"),
    )
    return await request.app[ACCESS].check(playback_id, creds)


def carried(request: web.Request) -> list[tuple[str, str]]:
    """The credentials this request carries in its URL, to pass on to a playlist's URLs."""
    return [(k, v) for k, v in request.query.items() if k in CARRIED and v]


async def tokenised_playlist(
    request: web.Request, path: Path, headers: dict[str, str]
) -> web.Response:
    """A playlist or thumbnails track rewritten so the URLs it lists carry this request's
    `jwt`/`accessKey`. Small files, answered whole (no Range), with their own ETag."""
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    body = carry_credentials(text, path.suffix, carried(request)).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers={**headers, "ETag": etag})
    return web.Response(body=body, headers={**headers, "ETag": etag})
