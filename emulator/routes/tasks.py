"""/api/task: getTasks, getTask."""

from __future__ import annotations

from aiohttp import web

from emulator.routes.common import json_response, paged, service, tenant
from emulator.store import TASK_FIELDS
from emulator.wire import parse_list_query, task_out


async def get_tasks(request: web.Request) -> web.Response:
    query = parse_list_query(request.query, TASK_FIELDS, ())
    docs, total = await service(request).list_tasks(tenant(request), query)
    return paged(request, [task_out(d) for d in docs], query.limit, query.offset, total)


async def get_task(request: web.Request) -> web.Response:
    doc = await service(request).get_task(tenant(request), request.match_info["taskId"])
    return json_response(task_out(doc))
