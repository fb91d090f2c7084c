"""/_emulator/requests: read and clear the request journal.

A bearer key narrows both to that tenant's calls (one test's); without a key (only when no
keys are configured) or with ?all=true (an admin key, when keys are configured) they cover
every call the server kept. Lists are newest first, paged with ?limit= and ?before=, and
show the start of each body; GET /_emulator/requests/{id} shows all the journal kept.
"""

from __future__ import annotations

import re

from aiohttp import web

from emulator.errors import BadRequest, NotFound
from emulator.journal import Journal, Query
from emulator.routes.common import (
    control_page,
    control_scope,
    entry_scope,
    everyone_asked,
    json_response,
    next_page,
    public,
)

JOURNAL = web.AppKey("journal", Journal)
_INTEGER = re.compile(r"-?[0-9]{1,18}")  # ASCII digits only, and within SQLite's range


@public
async def get_requests(request: web.Request) -> web.Response:
    """Calls newest first; ?method=, ?path= (a glob like /api/asset/*), ?since= (ms),
    ?limit= (100, at most 1000), ?before=<id> (the next page), ?all=true."""
    limit = control_page(request)
    query = Query(
        tenant=control_scope(request, everyone_asked(request), "reading every tenant's journal"),
        method=request.query.get("method") or None,
        path=request.query.get("path") or None,
        since=_number(request.query.get("since"), "since", "a time in milliseconds"),
    )
    before = _number(request.query.get("before"), "before", "a call id")
    calls = request.app[JOURNAL].read(query, before=before, limit=limit)
    headers = next_page(request, calls, limit, str(calls[-1].id)) if calls else {}
    return json_response([call.to_wire() for call in calls], headers=headers)


@public
async def get_request(request: web.Request) -> web.Response:
    """One call with all the journal kept of its bodies: the caller's, or any for an admin
    key (or without a key when no keys are configured)."""
    raw = request.match_info["id"]
    call_id = int(raw) if _INTEGER.fullmatch(raw) else None
    call = request.app[JOURNAL].get(call_id, entry_scope(request)) if call_id else None
    if call is None:
        raise NotFound("request not found")
    return json_response(call.to_wire(full=True))


@public
async def clear_requests(request: web.Request) -> web.Response:
    who = control_scope(request, everyone_asked(request), "clearing every tenant's journal")
    cleared = request.app[JOURNAL].clear(who)
    return json_response({"cleared": cleared})


def _number(value: str | None, name: str, what: str) -> int | None:
    if value is None or value == "":
        return None
    if _INTEGER.fullmatch(value):
        return int(value)
    raise BadRequest(
        f"{name} must be {what}"
        + (" (as GET /_emulator/clock gives)" if name == "since" else "")
        + f", not {value!r}"
    )
