"""/_emulator/requests: read and clear the request journal.

A bearer key narrows both to that tenant's calls (one test's); without a key they cover
every call the server kept.
"""

from __future__ import annotations

from aiohttp import web

from emulator.errors import BadRequest
from emulator.journal import Journal, Query
from emulator.routes.common import json_response, optional_tenant, public

JOURNAL = web.AppKey("journal", Journal)


@public
async def get_requests(request: web.Request) -> web.Response:
    """Calls oldest first; ?method=, ?path= (a glob like /api/asset/*), ?since= (ms)."""
    query = Query(
        tenant=optional_tenant(request),
        method=request.query.get("method") or None,
        path=request.query.get("path") or None,
        since=_since(request.query.get("since")),
    )
    return json_response([call.to_wire() for call in request.app[JOURNAL].read(query)])


@public
async def clear_requests(request: web.Request) -> web.Response:
    cleared = request.app[JOURNAL].clear(optional_tenant(request))
    return json_response({"cleared": cleared})


def _since(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise BadRequest(
            f"since must be a time in milliseconds (as GET /_emulator/clock gives), not {value!r}"
        ) from None
