"""GET /api/asset?limit=20 under wrk, server on one core, against a bare list handler
running the same query on the same rows.

The emulator (`serve --scenario instant`, fresh data dir) holds --assets assets in one
tenant (one ready from fixtures/sample.mp4, the rest made by request-upload). The
baseline is bench/bare_app.py `list`: the SQL the emulator's store builds for this request
(bare_app.LIST_SQL, from emulator/store/base.py `_list`: `deleted = 0 AND tenant = ?`,
Studio's default order updatedAt DESC, createdAt DESC, then rowid DESC, LIMIT 20), run
with aiosqlite on a copy of the emulator's own `assets` table: its CREATE TABLE and
CREATE INDEX statements read from the emulator's database, and every row copied with its
rowid. The 20 documents are parsed and sent back as a JSON array. Before measuring, both
first pages are checked to hold the same ids in the same order.

Both servers on core 0, wrk (`-t1 -c32 --latency`, same Authorization header to both) on
core 1, rounds alternating. Target (issue 16): median req/s ratio >= 0.8.

    .venv/bin/python bench/list_assets.py [--rounds 5] [--seconds 10] [--connections 32]
                                          [--assets 3000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

from bare_app import LIST_SQL
from harness import call, median, row, scratch, start_bare, start_emulator, summarise, verdict
from wrkload import (
    FIXED_PATH_LUA,
    alternate,
    find_wrk,
    lua_script,
    make_assets,
    per_cpu_ratios,
)

KEY = "bench-list-assets"
LIMIT = 20
TARGET = 0.8  # emulator req/s over bare's, at least


def copy_assets_table(source: Path, target: Path) -> str:
    """The emulator's `assets` table and its indexes, schema and rows (rowids kept), into
    a new database; returns the one tenant the rows belong to."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        schema = [
            str(r[0])
            for r in src.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'assets' AND sql IS NOT NULL "
                "ORDER BY type DESC"  # the table before its indexes
            )
        ]
        columns = [str(r[1]) for r in src.execute("PRAGMA table_info(assets)")]
        rows = src.execute(f"SELECT rowid, {', '.join(columns)} FROM assets ORDER BY rowid")
        data = rows.fetchall()
        tenants = {str(t) for (t,) in src.execute("SELECT DISTINCT tenant FROM assets")}
    finally:
        src.close()
    if len(tenants) != 1:
        raise RuntimeError(f"expected the assets of one tenant, found {len(tenants)}")
    dst = sqlite3.connect(target)
    try:
        dst.execute("PRAGMA journal_mode=WAL")
        for statement in schema:
            dst.execute(statement)
        marks = ", ".join("?" for _ in range(len(columns) + 1))
        dst.executemany(f"INSERT INTO assets (rowid, {', '.join(columns)}) VALUES ({marks})", data)
        dst.commit()  # no ANALYZE: the emulator runs none, so both plan without statistics
        plan = dst.execute(f"EXPLAIN QUERY PLAN {LIST_SQL}", (next(iter(tenants)), LIMIT, 0))
        print("query plan: " + "; ".join(str(r[-1]) for r in plan))
    finally:
        dst.close()
    return next(iter(tenants))


def first_page_ids(url: str) -> list[str]:
    status, body = call("GET", url, key=KEY)
    if status != 200 or not isinstance(body, list):
        raise RuntimeError(f"GET {url} answered {status}: {body}")
    return [str(d["id"]) for d in body]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--assets", type=int, default=3000)
    args = parser.parse_args()
    wrk = find_wrk()

    with scratch("bench-list-") as tmp:
        emulator = start_emulator(tmp / "data", tmp, "--scenario", "instant")
        bare = None
        try:
            ids = make_assets(emulator, KEY, args.assets)
            tenant = copy_assets_table(tmp / "data" / "emulator.sqlite3", tmp / "bare.sqlite3")
            bare_db = str(tmp / "bare.sqlite3")
            bare = start_bare("list", tmp, "--db", bare_db, "--tenant", tenant)
            emu_path, bare_path = f"/api/asset?limit={LIMIT}", f"/docs?limit={LIMIT}"
            emu_page = first_page_ids(emulator.root + emu_path)
            bare_page = first_page_ids(bare.root + bare_path)
            if emu_page != bare_page or len(emu_page) != LIMIT:
                raise RuntimeError(
                    f"the first pages differ: emulator {emu_page}, bare {bare_page}: "
                    "bare_app.LIST_SQL is no longer the store's query"
                )
            size = len(json.dumps(call("GET", emulator.root + emu_path, key=KEY)[1]))
            emu_lua = lua_script(tmp / "emulator.lua", FIXED_PATH_LUA, key=KEY, path=emu_path)
            bare_lua = lua_script(tmp / "bare.lua", FIXED_PATH_LUA, key=KEY, path=bare_path)
            print(
                f"GET {emu_path} on {len(ids)} assets (page ~{size} B, same ids as bare's): "
                f"{args.rounds} rounds x {args.seconds:g} s, wrk -t1 -c{args.connections}; "
                "servers on core 0, wrk on core 1",
                flush=True,
            )

            emu_runs, bare_runs = alternate(
                wrk,
                (emulator, emu_lua),
                (bare, bare_lua),
                connections=args.connections,
                seconds=args.seconds,
                rounds=args.rounds,
            )
        finally:
            emulator.stop()
            if bare is not None:
                bare.stop()

    ratios = [e.rate / b.rate for e, b in zip(emu_runs, bare_runs, strict=True)]
    print(row("emulator", [e.rate for e in emu_runs], "req/s", "{:.0f}"))
    print(row("bare list handler", [b.rate for b in bare_runs], "req/s", "{:.0f}"))
    print(row("ratio emulator/bare", ratios, "", "{:.2f}"))
    print(row("emulator p99", [e.p99_ms for e in emu_runs], "ms", "{:.2f}"))
    print(row("bare p99", [b.p99_ms for b in bare_runs], "ms", "{:.2f}"))
    per_cpu = per_cpu_ratios(emu_runs, bare_runs)
    if per_cpu:
        print(row("per server cpu second", per_cpu, "", "{:.2f}"))
    ratio = median(ratios)
    met = ratio >= TARGET
    print(f"{verdict(met)}: emulator at {ratio:.2f} of bare's req/s (target >= {TARGET})")
    summarise(
        "list_assets",
        f"GET /api/asset?limit={LIMIT} req/s",
        median([e.rate for e in emu_runs]),
        median([b.rate for b in bare_runs]),
        "req/s",
        ratio,
        f">= {TARGET}",
        met,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
