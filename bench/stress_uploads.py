"""Stress: many concurrent uploads beside list reads, on the real clock, and count the
assets that never leave `waiting`/`processing` (issue 11: 15 of 1,500 stuck before the
store's units of work were made atomic).

Each round: N request-uploads and PUTs of fixtures/sample.mp4 at once (aiohttp client,
one connection each) while two readers list the tenant's assets, then every asset is
polled until it is `ready`/`failed` or a deadline passes. Prints per round and in total:
uploads, stuck, failed, and the hash check. The baseline is the rule itself: 0 stuck.
Exit 1 when any asset is stuck or has the wrong size.

    .venv/bin/python bench/stress_uploads.py --rounds 15 --uploads 100
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import aiohttp
from harness import SAMPLE_MP4, scratch, start_emulator

TERMINAL = ("ready", "failed")


async def one_round(root: str, key: str, uploads: int, deadline_s: float) -> dict[str, int]:
    body = SAMPLE_MP4.read_bytes()
    auth = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=uploads + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        done = asyncio.Event()

        async def upload(n: int) -> str:
            async with session.post(
                f"{root}/api/asset/request-upload", json={"name": f"clip-{n}"}, headers=auth
            ) as resp:
                created: Any = await resp.json()
            async with session.put(created["url"], data=body) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"PUT answered {resp.status}: {await resp.text()}")
            return str(created["asset"]["id"])

        async def lister() -> None:
            while not done.is_set():
                async with session.get(f"{root}/api/asset?limit=100", headers=auth) as resp:
                    await resp.read()

        readers = [asyncio.create_task(lister()) for _ in range(2)]
        ids = await asyncio.gather(*(upload(n) for n in range(uploads)))
        done.set()
        await asyncio.gather(*readers)

        stop_at = time.monotonic() + deadline_s
        phases: dict[str, dict[str, Any]] = {}
        while True:
            for asset_id in ids:
                if phases.get(asset_id, {}).get("status", {}).get("phase") in TERMINAL:
                    continue
                async with session.get(f"{root}/api/asset/{asset_id}", headers=auth) as resp:
                    phases[asset_id] = await resp.json()
            waiting = [a for a in phases.values() if a["status"]["phase"] not in TERMINAL]
            if not waiting or time.monotonic() > stop_at:
                break
            await asyncio.sleep(0.2)
    ready = [a for a in phases.values() if a["status"]["phase"] == "ready"]
    return {
        "uploads": uploads,
        "stuck": len(waiting),
        "failed": sum(a["status"]["phase"] == "failed" for a in phases.values()),
        "wrong_size": sum(a.get("size") != len(body) for a in ready),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds to reach ready")
    args = parser.parse_args()
    totals = {"uploads": 0, "stuck": 0, "failed": 0, "wrong_size": 0}
    with scratch("stress-") as tmp:
        server = start_emulator(tmp / "data", tmp, "--scenario", "instant", pin=False)
        try:
            for n in range(args.rounds):
                began = time.perf_counter()
                got = asyncio.run(
                    one_round(server.root, f"stress-{n}", args.uploads, args.deadline)
                )
                took = time.perf_counter() - began
                print(f"round {n + 1}: {got} in {took:.1f} s", flush=True)
                for k, v in got.items():
                    totals[k] += v
        finally:
            server.stop()
        errors = [line for line in server.log.read_text().splitlines() if "Error" in line]
    print(f"total: {totals}; target: 0 stuck, 0 wrong sizes (issue 11: 15 of 1,500 stuck)")
    print(f"server log lines naming an Error: {len(errors)}")
    for line in errors[:5]:
        print("  ", line)
    return 1 if totals["stuck"] or totals["wrong_size"] else 0


if __name__ == "__main__":
    sys.exit(main())
