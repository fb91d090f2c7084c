"""The dashboard: one static page at `/` and its script and style under /dashboard/.

The files are package data (emulator/dashboard/), read once and served as they are: no
build step and nothing fetched from the internet. The page reads everything through the
API and the control plane with the key it is given; its calls carry DASHBOARD_HEADER so
they stay out of the request journal and out of a scenario's HTTP faults (its polling
must neither fill a test's journal nor move a rule's `nth` counter).
"""

from __future__ import annotations

import functools

from aiohttp import web

from emulator.errors import NotFound
from emulator.routes.common import public

DASHBOARD_HEADER = "X-Livepeer-Emulator-Dashboard"
# name → content type: the only files served, so no path from a request reaches the disk.
FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}


def from_dashboard(request: web.Request) -> bool:
    """A call the dashboard made for itself (not the developer's app's)."""
    return request.headers.get(DASHBOARD_HEADER) == "1"


@functools.cache
def _read(name: str) -> bytes:
    # Here, not at the top: importlib.resources costs ~1 ms of every start, and a server
    # may never be asked for its dashboard.
    from importlib import resources

    return resources.files("emulator.dashboard").joinpath(name).read_bytes()


def _file(name: str) -> web.Response:
    if name not in FILES:
        raise NotFound("not found")
    return web.Response(
        body=_read(name),
        content_type=FILES[name],
        charset="utf-8",
        # Always revalidated: a new emulator version must not run an old script.
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@public
async def dashboard_page(request: web.Request) -> web.Response:
    return _file("index.html")


@public
async def dashboard_file(request: web.Request) -> web.Response:
    return _file(request.match_info["name"])
