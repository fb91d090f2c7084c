"""GET /api/asset/{id} throughput, server on one core, against a bare aiohttp handler.

The emulator (`livepeer-emulator serve --scenario instant`, fresh data dir) gets one asset
uploaded from fixtures/sample.mp4, so its document is a real, ready one. The baseline is
bench/bare_app.py `get`: aiosqlite primary-key read of the SAME document from a
`docs(id PRIMARY KEY, doc JSON)` table, parsed and returned as JSON. Both servers are
pinned to core 0, the load generator (aiohttp client, keep-alive connections) to core 1,
and they are measured alternately, round after round. Target: emulator >= 50% of bare.

    .venv/bin/python bench/get_asset.py [--rounds 5] [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from harness import (
    SAMPLE_MP4,
    Server,
    call,
    load,
    median,
    pin_self,
    poll_asset,
    request_upload,
    row,
    scratch,
    start_bare,
    start_emulator,
    verdict,
)

KEY = "bench-get-asset"
TARGET = 0.5


def ready_asset(server: Server, upload: dict[str, Any]) -> dict[str, Any]:
    status, _ = call("PUT", str(upload["url"]), data=SAMPLE_MP4.read_bytes())
    if status != 200:
        raise RuntimeError(f"upload answered {status}")
    # The upload is answered once its bytes are stored; hashing and probing follow.
    doc = poll_asset(server, KEY, upload["asset"]["id"], while_in=("waiting", "processing"))
    if doc["status"]["phase"] != "ready":
        raise RuntimeError(f"asset not ready: {doc}")
    return doc


def seed_bare(db_path: Path, doc: dict[str, Any]) -> None:
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
        db.execute("INSERT INTO docs VALUES (?, ?)", (doc["id"], json.dumps(doc)))
    db.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    pin_self()

    with scratch("bench-get-") as tmp:
        emulator = start_emulator(tmp / "data", tmp, "--scenario", "instant")
        bare = None
        try:
            doc = ready_asset(emulator, request_upload(emulator, KEY, "bench"))
            seed_bare(tmp / "bare.sqlite3", doc)
            bare = start_bare("get", tmp, "--db", str(tmp / "bare.sqlite3"))
            emu_url = f"{emulator.root}/api/asset/{doc['id']}"
            bare_url = f"{bare.root}/doc/{doc['id']}"
            auth = {"Authorization": f"Bearer {KEY}"}
            size = len(json.dumps(doc))
            print(
                f"GET one asset ({size} B doc): {args.rounds} rounds x {args.seconds:g} s, "
                f"{args.connections} connections; servers on core 0, client on core 1"
            )
            emu_rates: list[float] = []
            bare_rates: list[float] = []
            ratios: list[float] = []
            for n in range(args.rounds):
                e = load(emu_url, auth, args.connections, args.seconds, emulator.pid)
                b = load(bare_url, {}, args.connections, args.seconds, bare.pid)
                if e.errors or b.errors:
                    raise RuntimeError(f"non-200 answers: emulator {e.errors}, bare {b.errors}")
                emu_rates.append(e.rate)
                bare_rates.append(b.rate)
                ratios.append(e.rate / b.rate)
                print(
                    f"  round {n + 1}: emulator {e.rate:.0f} req/s "
                    f"(server cpu {e.server_cpu:.0%}, client cpu {e.client_cpu:.0%}), "
                    f"bare {b.rate:.0f} req/s "
                    f"(server cpu {b.server_cpu:.0%}, client cpu {b.client_cpu:.0%})"
                )
        finally:
            emulator.stop()
            if bare is not None:
                bare.stop()

    ratio = median(ratios)
    print(row("emulator", emu_rates, "req/s", "{:.0f}"))
    print(row("bare aiohttp+aiosqlite", bare_rates, "req/s", "{:.0f}"))
    print(row("ratio emulator/bare", ratios, "", "{:.2f}"))
    print(f"{verdict(ratio >= TARGET)}: emulator at {ratio:.0%} of bare (target >= {TARGET:.0%})")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
