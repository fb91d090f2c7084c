"""GET /api/asset/{id} under wrk, server on one core, against a bare aiohttp+aiosqlite handler.

Measured as issue 16 does: the emulator (`serve --scenario instant`, fresh data dir)
holds --assets assets in one tenant (one ready asset from fixtures/sample.mp4, the rest
made by POST /api/asset/request-upload); the baseline is bench/bare_app.py `get`: a
primary-key read with aiosqlite of the same documents (the emulator's own answer for
each id) from a `docs(id PRIMARY KEY, doc)` table, parsed and sent back as JSON. Both
servers are pinned to core 0, wrk (`-t1 -c32 --latency`) to core 1, with a Lua script
that picks a random id per request and sends the same Authorization header to both.
Rounds alternate between the servers (which goes first alternates too); each round gives
a req/s ratio and a p99 ratio.

Targets (issue 16): median req/s ratio >= 0.9 and median p99 ratio <= 2.0.

    .venv/bin/python bench/get_asset.py [--rounds 5] [--seconds 10] [--connections 32]
                                        [--assets 3000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from harness import median, row, scratch, start_bare, start_emulator, summarise, verdict
from wrkload import (
    RANDOM_IDS_LUA,
    alternate,
    find_wrk,
    get_all,
    lua_script,
    make_assets,
    per_cpu_ratios,
    write_ids,
)

KEY = "bench-get-asset"
RATE_TARGET = 0.9  # emulator req/s over bare's, at least
P99_TARGET = 2.0  # emulator p99 over bare's, at most


def seed_bare(db_path: Path, ids: list[str], bodies: list[bytes]) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        db.executemany(
            "INSERT INTO docs VALUES (?, ?)",
            [(i, b.decode()) for i, b in zip(ids, bodies, strict=True)],
        )
    db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--assets", type=int, default=3000)
    args = parser.parse_args()
    wrk = find_wrk()

    with scratch("bench-get-") as tmp:
        emulator = start_emulator(tmp / "data", tmp, "--scenario", "instant")
        bare = None
        try:
            ids = make_assets(emulator, KEY, args.assets)
            bodies = get_all(emulator.root, KEY, [f"/api/asset/{i}" for i in ids])
            seed_bare(tmp / "bare.sqlite3", ids, bodies)
            bare = start_bare("get", tmp, "--db", str(tmp / "bare.sqlite3"))
            ids_file = write_ids(tmp / "ids.txt", ids)
            emu_lua = lua_script(
                tmp / "emulator.lua",
                RANDOM_IDS_LUA,
                ids=ids_file,
                seed=1,
                key=KEY,
                prefix="/api/asset/",
                suffix="",
            )
            bare_lua = lua_script(
                tmp / "bare.lua",
                RANDOM_IDS_LUA,
                ids=ids_file,
                seed=1,
                key=KEY,
                prefix="/doc/",
                suffix="",
            )
            sizes = sorted(len(b) for b in bodies)
            print(
                f"GET /api/asset/{{id}}, random id of {len(ids)} (answers "
                f"{sizes[0]}-{sizes[-1]} B, median {sizes[len(sizes) // 2]} B): "
                f"{args.rounds} rounds x {args.seconds:g} s, "
                f"wrk -t1 -c{args.connections}; servers on core 0, wrk on core 1",
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

    rate_ratios = [e.rate / b.rate for e, b in zip(emu_runs, bare_runs, strict=True)]
    p99_ratios = [e.p99_ms / b.p99_ms for e, b in zip(emu_runs, bare_runs, strict=True)]
    print(row("emulator", [e.rate for e in emu_runs], "req/s", "{:.0f}"))
    print(row("bare aiohttp+aiosqlite", [b.rate for b in bare_runs], "req/s", "{:.0f}"))
    print(row("ratio emulator/bare", rate_ratios, "", "{:.2f}"))
    print(row("emulator p50", [e.p50_ms for e in emu_runs], "ms", "{:.2f}"))
    print(row("bare p50", [b.p50_ms for b in bare_runs], "ms", "{:.2f}"))
    print(row("emulator p99", [e.p99_ms for e in emu_runs], "ms", "{:.2f}"))
    print(row("bare p99", [b.p99_ms for b in bare_runs], "ms", "{:.2f}"))
    print(row("p99 ratio emulator/bare", p99_ratios, "", "{:.2f}"))
    per_cpu = per_cpu_ratios(emu_runs, bare_runs)
    if per_cpu:
        print(row("per server cpu second", per_cpu, "", "{:.2f}"))
    rate_ratio, p99_ratio = median(rate_ratios), median(p99_ratios)
    rate_met, p99_met = rate_ratio >= RATE_TARGET, p99_ratio <= P99_TARGET
    print(f"{verdict(rate_met)}: emulator at {rate_ratio:.2f} of bare's req/s (target >= 0.9)")
    print(f"{verdict(p99_met)}: emulator p99 {p99_ratio:.2f}x bare's (target <= 2.0)")
    summarise(
        "get_asset",
        "GET /api/asset/{id} req/s",
        median([e.rate for e in emu_runs]),
        median([b.rate for b in bare_runs]),
        "req/s",
        rate_ratio,
        f">= {RATE_TARGET}",
        rate_met,
    )
    summarise(
        "get_asset",
        "GET /api/asset/{id} p99",
        median([e.p99_ms for e in emu_runs]),
        median([b.p99_ms for b in bare_runs]),
        "ms",
        p99_ratio,
        f"<= {P99_TARGET}",
        p99_met,
    )
    return 0 if rate_met and p99_met else 1


if __name__ == "__main__":
    sys.exit(main())
