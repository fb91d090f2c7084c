"""/api/task: getTasks, getTask."""

from __future__ import annotations

from aiohttp import web

from emulator.assets import TASK_LIST_FIELDS
from emulator.routes.common import ASSETS, json_response, origin, paged, tenant
from emulator.wire import parse_list_query, task_out


async def get_tasks(request: web.Request) -> web.Response:
    query = parse_list_query(request.rel_url.raw_query_string, TASK_LIST_FIELDS, ())
    docs, total = await request.app[ASSETS].list_tasks(tenant(request), query)
    base = origin(request)
    return paged(request, [task_out(d, base) for d in docs], query.limit, query.offset, total)


async def get_task(request: web.Request) -> web.Response:
    doc = await request.app[ASSETS].get_task(tenant(request), request.match_info["taskId"])
    return json_response(task_out(doc, origin(request)))
