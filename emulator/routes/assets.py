"""/api/asset: requestUpload, uploadAsset (from a URL), getAssets, getAsset, updateAsset,
deleteAsset, and restore."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from emulator import validation
from emulator.assets import ASSET_LIST_FIELDS, Assets
from emulator.models import Doc
from emulator.routes.common import (
    ASSETS,
    TOKEN_NAME,
    json_body,
    json_response,
    origin,
    paged_encoded,
    read_json,
    tenant,
)
from emulator.wire import asset_out, dumps, parse_list_query


def _assets(request: web.Request) -> Assets:
    return request.app[ASSETS]


def _details(request: web.Request) -> bool:
    # Studio keeps videoSpec.tracks for any non-empty `details`, even "false".
    return bool(request.query.get("details"))


async def request_upload(request: web.Request) -> web.Response:
    body = await read_json(request, validation.NEW_ASSET)
    base = origin(request)
    result, token = await _assets(request).request_upload(
        tenant(request), body, base, token_name=request.get(TOKEN_NAME)
    )
    return json_response(
        {
            "url": f"{base}/api/asset/upload/direct?token={token}",
            "tusEndpoint": f"{base}/api/asset/upload/tus?token={token}",
            "asset": asset_out(result["asset"], base, details=False),
            "task": result["task"],
        }
    )


async def upload_asset(request: web.Request) -> web.Response:
    body = await read_json(request, validation.NEW_ASSET_FROM_URL)
    created, result = await _assets(request).import_from_url(
        tenant(request), body, token_name=request.get(TOKEN_NAME)
    )
    result["asset"] = asset_out(result["asset"], origin(request), details=False)
    return json_response(result, status=201 if created else 200)


# Livepeer's docs name POST /api/asset/request-upload/url, but Studio answers it 404 (its
# route is /api/asset/upload/url). The emulator serves it, since the docs are what people
# read, and marks every answer there so nobody ships a call that fails in production.
DOCS_ALIAS = "/api/asset/request-upload/url"
EMULATOR_ONLY = "X-Livepeer-Emulator-Only"
EMULATOR_ONLY_NOTE = (
    "POST /api/asset/request-upload/url is named by the docs but Studio answers it 404; "
    "use POST /api/asset/upload/url"
)


async def mark_docs_alias(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer on the alias, errors and 401s included."""
    if request.path.rstrip("/") == DOCS_ALIAS:
        response.headers[EMULATOR_ONLY] = EMULATOR_ONLY_NOTE


async def get_assets(request: web.Request) -> web.Response:
    query = parse_list_query(
        request.rel_url.raw_query_string, ASSET_LIST_FIELDS, ("playbackId", "sourceUrl", "phase")
    )
    base, details = origin(request), _details(request)
    # Each asset as GET /api/asset/{id} encodes it: unchanged ones come from the read cache.
    items, total = await _assets(request).asset_list_views(
        tenant(request), query, (base, details), _renderer(base, details)
    )
    return paged_encoded(request, items, query.limit, query.offset, total)


def _renderer(base: str, details: bool) -> Callable[[Doc], bytes]:
    """How an asset is encoded for a caller at `base` (the read cache's variant)."""

    def render(doc: Doc) -> bytes:
        return dumps(asset_out(doc, base, details=details)).encode()

    return render


async def get_asset(request: web.Request) -> web.Response:
    base, details = origin(request), _details(request)
    # The most frequent call of all (every poll of an SDK's wait loop): answered from the
    # read cache while the asset is unchanged.
    body = await _assets(request).asset_view(
        tenant(request), request.match_info["assetId"], (base, details), _renderer(base, details)
    )
    return json_body(body)


async def update_asset(request: web.Request) -> web.Response:
    patch = await read_json(request, validation.ASSET_PATCH)
    doc = await _assets(request).update_asset(tenant(request), request.match_info["assetId"], patch)
    return json_response(asset_out(doc, origin(request), details=_details(request)))


async def delete_asset(request: web.Request) -> web.Response:
    await _assets(request).delete_asset(tenant(request), request.match_info["assetId"])
    return web.Response(status=204)


async def restore_asset(request: web.Request) -> web.Response:
    """Not in Studio's public schema, but any API key may call it (authorizer({}))."""
    await _assets(request).restore_asset(tenant(request), request.match_info["assetId"])
    return web.Response(status=204)
