"""RSS of `serve` holding 100k assets, after every one of them was read once, against its
idle RSS.

1. `serve --scenario instant` on an empty data dir; its VmRSS once started and at rest
   ("idle"). One POST /api/asset/request-upload makes the tenant's first asset (the
   template of the rest), then the server is stopped.
2. The other --assets - 1 assets are written into the stopped server's database by the
   emulator's own code, in this process: `documents.new_asset` and
   `documents.new_upload_task` build the same documents request-upload builds (phase
   `uploading`, a directUpload source, a pending upload task; the tenant, origin and
   token name taken from the first asset), and `Store.save(Changes(...))` writes them
   with the store's own SQL, 1,000 per transaction. Left out: the two webhook events per
   asset that request-upload puts in the outbox (no webhook is registered, so they would
   be dropped anyway) and the upload tokens (signed on the fly, never stored). This takes
   seconds, where 100k request-uploads over HTTP take minutes (~750 a second here).
3. `serve` again on that data dir (its RSS with the rows stored but not yet read is
   printed too); an aiohttp client (32 connections) GETs every asset once by id (this
   fills any read cache up to its bound), then --pages pages of GET /api/asset?limit=100
   following the `Link` cursor; after a short rest, VmRSS and VmHWM.

Target (issue 16): VmRSS after - idle VmRSS <= 64 MiB.

    .venv/bin/python bench/memory.py [--assets 100000] [--pages 10]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import urllib.request
from pathlib import Path

from harness import (
    Server,
    call,
    proc_status_kib,
    request_upload,
    scratch,
    start_emulator,
    summarise,
    verdict,
)
from wrkload import get_all

from emulator import documents
from emulator.models import AssetPhase
from emulator.store import AssetRow, Changes, Store, TaskRow

KEY = "bench-memory"
TARGET_MIB = 64.0
BATCH = 1000
REST_S = 1.0  # let the server finish what the last request started before reading VmRSS


def mib(kib: int) -> float:
    return kib / 1024


def settled_rss(server: Server) -> int:
    time.sleep(REST_S)
    return proc_status_kib(server.pid, "VmRSS")


async def add_assets(db_path: Path, template_id: str, count: int) -> list[str]:
    """`count` more assets like request-upload's, beside the template, by the store's save."""
    store = await Store.open(db_path)
    try:
        template = await store.get_asset(template_id)
        tasks = await store.tasks_of_asset(template_id)
        if template is None or len(tasks) != 1:
            raise RuntimeError(f"template asset {template_id} or its task is missing")
        tenant, doc = template.tenant, template.doc
        token_name = doc.get("createdByTokenName")
        task_url = str(tasks[0].doc["params"]["upload"]["url"])
        origin = task_url.split("/asset/", 1)[0]
        ids: list[str] = []
        for start in range(0, count, BATCH):
            changes = Changes()
            for n in range(start, min(start + BATCH, count)):
                now = int(doc["createdAt"]) + 1 + n // 10  # ~10 a millisecond, in order
                body = {"name": f"bench-{n:06d}"}
                asset = documents.new_asset(
                    tenant,
                    body,
                    AssetPhase.UPLOADING,
                    {"type": "directUpload"},
                    now,
                    token_name,
                )
                url = f"{origin}/asset/{asset['playbackId']}/video"
                task = documents.new_upload_task(asset, url, body, now)
                changes.assets.append(AssetRow(tenant, asset))
                changes.tasks.append(TaskRow(tenant, task))
                ids.append(str(asset["id"]))
            await store.save(changes)
        return ids
    finally:
        await store.close()


def list_pages(server: Server, pages: int) -> int:
    url: str | None = f"{server.root}/api/asset?limit=100"
    seen = 0
    for _ in range(pages):
        if url is None:
            break
        headers = {"Authorization": f"Bearer {KEY}"}
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
            seen += len(resp.read().split(b'"playbackId"')) - 1
            link = resp.headers.get("Link")
        found = re.match(r"<([^>]+)>", link or "")
        url = found.group(1) if found else None
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    started = time.perf_counter()

    with scratch("bench-memory-") as tmp:
        data = tmp / "data"
        server = start_emulator(data, tmp, "--scenario", "instant")
        try:
            idle = settled_rss(server)
            first = request_upload(server, KEY, "bench-template")
        finally:
            server.stop()
        print(f"idle (empty data dir): VmRSS {mib(idle):.1f} MiB", flush=True)

        made = time.perf_counter()
        first_id = str(first["asset"]["id"])
        more = asyncio.run(add_assets(data / "emulator.sqlite3", first_id, args.assets - 1))
        ids = [first_id, *more]
        print(
            f"{len(ids)} assets stored in {time.perf_counter() - made:.1f} s "
            f"(database {mib((data / 'emulator.sqlite3').stat().st_size // 1024):.0f} MiB)",
            flush=True,
        )

        server = start_emulator(data, tmp, "--scenario", "instant")
        try:
            at_start = settled_rss(server)
            print(f"restarted with {len(ids)} assets: VmRSS {mib(at_start):.1f} MiB", flush=True)
            began = time.perf_counter()
            get_all(server.root, KEY, [f"/api/asset/{i}" for i in ids], 32, keep=False)
            rate = len(ids) / (time.perf_counter() - began)
            after_gets = settled_rss(server)
            print(
                f"GET of every asset once ({rate:.0f} req/s): VmRSS {mib(after_gets):.1f} MiB",
                flush=True,
            )
            listed = list_pages(server, args.pages)
            status, _ = call("GET", server.root + "/_emulator/health")
            if status != 200:
                raise RuntimeError(f"health answered {status}")
            after = settled_rss(server)
            peak = proc_status_kib(server.pid, "VmHWM")
        finally:
            server.stop()

    growth = mib(after - idle)
    met = growth <= TARGET_MIB
    print(
        f"{args.pages} list pages of 100 ({listed} assets): VmRSS {mib(after):.1f} MiB, "
        f"peak (VmHWM) {mib(peak):.1f} MiB"
    )
    print(
        f"{verdict(met)}: RSS {mib(after):.1f} MiB with {len(ids)} assets read, "
        f"{growth:+.1f} MiB over idle {mib(idle):.1f} MiB (target <= +{TARGET_MIB:g} MiB); "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    summarise(
        "memory",
        f"RSS over idle, {len(ids) // 1000}k assets read (baseline: idle RSS)",
        round(growth, 1),
        round(mib(idle), 1),
        "MiB",
        None,
        f"<= +{TARGET_MIB:g} MiB",
        met,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
