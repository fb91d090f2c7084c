"""The baseline: the smallest aiohttp app doing what the emulator does in each benchmark.

    bare_app.py health --port P              GET /health → {"status": "ok"}
    bare_app.py get --port P --db FILE       GET /doc/{id}: one primary-key read of a
                                             JSON doc column with aiosqlite, parsed and
                                             sent back as JSON
    bare_app.py list --port P --db FILE --tenant T
                                             GET /docs?limit=N: the emulator store's own
                                             list query (LIST_SQL) on a copy of its
                                             assets table and index, the N docs parsed
                                             and sent back as a JSON array
    bare_app.py upload --port P --dir DIR    PUT /upload: stream the body to a file in
                                             DIR in 256 KiB chunks (kept: the bench
                                             removes its scratch dir afterwards)

No auth, no validation, no middlewares: the price of those is what the emulator's figure
is compared against.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
from aiohttp import web

CHUNK = 256 * 1024
DB = web.AppKey("db", aiosqlite.Connection)
TENANT = web.AppKey("tenant", str)
# What emulator/store/base.py `_list` builds for GET /api/asset?limit=N (no filters, no
# cursor, Studio's default order, no count): keep it in step with the store.
LIST_SQL = (
    "SELECT id, doc FROM assets WHERE deleted = 0 AND tenant = ? "
    "ORDER BY updated_at DESC NULLS LAST, created_at DESC NULLS LAST, rowid DESC "
    "LIMIT ? OFFSET ?"
)
DIR = web.AppKey("dir", Path)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_doc(request: web.Request) -> web.Response:
    db = request.app[DB]
    async with db.execute("SELECT doc FROM docs WHERE id = ?", (request.match_info["id"],)) as c:
        found = await c.fetchone()
    if found is None:
        return web.json_response({"errors": ["not found"]}, status=404)
    return web.json_response(json.loads(found[0]))


async def list_docs(request: web.Request) -> web.Response:
    limit = int(request.query.get("limit", "20"))
    # Read whole in one call, as the emulator's store reads its lists.
    rows = await request.app[DB].execute_fetchall(LIST_SQL, (request.app[TENANT], limit, 0))
    return web.json_response([json.loads(r[1]) for r in rows])


async def upload(request: web.Request) -> web.Response:
    target = request.app[DIR] / f"{uuid.uuid4()}.part"
    size = 0
    try:
        with target.open("wb") as f:
            async for chunk in request.content.iter_chunked(CHUNK):
                f.write(chunk)
                size += len(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    # Kept, like the emulator's file: deleting 1 GiB inside the request would charge the
    # baseline for work the emulator does not do. The bench removes its scratch dir.
    return web.json_response({"size": size})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("health", "get", "list", "upload"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db")
    parser.add_argument("--tenant")
    parser.add_argument("--dir")
    args = parser.parse_args()

    app = web.Application(client_max_size=1024**4)
    app.router.add_get("/health", health)
    if args.mode in ("get", "list"):
        app.router.add_get("/doc/{id}", get_doc)
        if args.mode == "list":
            app[TENANT] = args.tenant
            app.router.add_get("/docs", list_docs)

        async def database(app: web.Application) -> AsyncIterator[None]:
            app[DB] = await aiosqlite.connect(args.db)
            await app[DB].execute("PRAGMA journal_mode=WAL")
            yield
            await app[DB].close()

        app.cleanup_ctx.append(database)
    elif args.mode == "upload":
        # The same glibc malloc priming as the emulator's (emulator/blobs.py,
        # _keep_freed_batches_in_the_heap): left to chance, this baseline's page faults
        # swung from ~400 to ~195,000 per GiB between unpinned runs, and its CPU with them.
        bytes(8 * 1024 * 1024)
        app[DIR] = Path(args.dir)
        app.router.add_put("/upload", upload)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
