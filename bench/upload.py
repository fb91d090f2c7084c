"""A 1 GiB direct PUT: emulator RSS growth and throughput against a bare aiohttp handler
streaming the same body to disk.

Each round starts a fresh `livepeer-emulator serve --scenario instant` (temp data dir,
deleted afterwards), asks for an upload URL and PUTs 1 GiB to
/api/asset/upload/direct?token=…, then PUTs the same body to bench/bare_app.py `upload`
(256 KiB chunks written straight to a file, deleted afterwards). Servers are pinned to
core 0, the client to core 1. The body is generated on the fly (one random 1 MiB block
sent 1024 times, with a Content-Length, as the SDKs send it), so no 1 GiB file is kept.
It is not media: the emulator's ffprobe rejects it quickly and the asset ends `failed`,
which is fine, because the figure is the PUT's wall time (first byte sent → response).
The emulator answers once the bytes are on disk and then hashes (md5 + sha256) and
probes them while the asset is `waiting`; that tail is reported on its own ("then
analysed in"), from the response until the asset leaves `waiting`, with its CPU time,
and RSS is sampled through it too.

While each PUT runs, the server's VmRSS is sampled every 10 ms from /proc/PID/status;
growth = the highest sample (or VmHWM, if higher) minus VmRSS just before the PUT.
Targets: emulator growth < 64 MiB, emulator throughput >= 50% of bare.

    .venv/bin/python bench/upload.py [--rounds 5] [--mib 1024] [--one-core]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness import (
    RssSampler,
    Server,
    cpu_seconds,
    median,
    pin_self,
    poll_asset,
    proc_status_kib,
    request_upload,
    row,
    scratch,
    start_bare,
    start_emulator,
    verdict,
)

KEY = "bench-upload"
BLOCK = 1024 * 1024
RSS_LIMIT_MIB = 64
TARGET = 0.5


@dataclass
class Put:
    status: int
    seconds: float
    tail_seconds: float  # from the last byte handed to the kernel to the response
    rss_growth_mib: float
    mib: int
    cpu_seconds: float  # the server's user+system CPU time (all threads) during the PUT
    after_seconds: float = 0.0  # from the response until the uploaded file was analysed
    after_cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.mib / self.seconds

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_seconds * 1024 / self.mib


async def _put(url: str, mib: int, block: bytes) -> tuple[int, float, float]:
    """PUT `mib` MiB to `url` over a raw connection: (status, seconds to the response,
    seconds from the last byte sent to the response)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = (
        f"PUT {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {mib * BLOCK}\r\n"
        "Connection: close\r\n\r\n"
    )
    started = time.perf_counter()
    writer.write(head.encode())
    for _ in range(mib):
        writer.write(block)
        await writer.drain()
    sent = time.perf_counter()
    status_line = await reader.readline()
    answered = time.perf_counter()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1]), answered - started, answered - sent


def hash_floor(block: bytes, mib: int = 256) -> float:
    """CPU seconds per GiB that md5 + sha256 alone cost here: what the emulator must pay
    on top of receiving and writing (hashlib releases the GIL, so it can overlap them)."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    started = time.process_time()
    for _ in range(mib):
        md5.update(block)
        sha256.update(block)
    return (time.process_time() - started) * 1024 / mib


def put(
    server: Server, url: str, mib: int, block: bytes, after: Callable[[], None] | None = None
) -> Put:
    """PUT the body; then, with `after`, wait for the work the server does after answering."""
    before_kib = proc_status_kib(server.pid, "VmRSS")
    cpu = cpu_seconds(server.pid)
    sampler = RssSampler(server.pid)
    sampler.start()
    try:
        status, seconds, tail = asyncio.run(_put(url, mib, block))
        put_cpu = cpu_seconds(server.pid) - cpu
        started = time.perf_counter()
        if after is not None:
            after()
        after_seconds = time.perf_counter() - started
    finally:
        sampler.halt.set()
        sampler.join()
    after_cpu = cpu_seconds(server.pid) - cpu - put_cpu
    peak_kib = max(sampler.peak_kib, proc_status_kib(server.pid, "VmHWM"))
    growth = (peak_kib - before_kib) / 1024
    return Put(status, seconds, tail, growth, mib, put_cpu, after_seconds, after_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=1024, help="body size in MiB")
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="pin the servers to core 0 and the client to core 1 (default: no pinning)",
    )
    args = parser.parse_args()
    if args.one_core:
        pin_self()
    pin = args.one_core
    block = os.urandom(BLOCK)
    emu: list[Put] = []
    bare: list[Put] = []
    floors: list[float] = []
    where = "servers on core 0, client on core 1" if pin else "no CPU pinning"
    print(f"direct PUT of {args.mib} MiB: {args.rounds} rounds; {where}")
    for n in range(args.rounds):
        with scratch("bench-upload-") as tmp:
            server = start_emulator(tmp / "data", tmp, "--scenario", "instant", pin=pin)
            try:
                created = request_upload(server, KEY, f"bench {n}")
                asset_id = created["asset"]["id"]
                analysed = lambda: poll_asset(server, KEY, asset_id, while_in=("waiting",))  # noqa: B023, E731
                emu.append(put(server, str(created["url"]), args.mib, block, analysed))
            finally:
                server.stop()
            (tmp / "sink").mkdir()
            server = start_bare("upload", tmp, "--dir", str(tmp / "sink"), pin=pin)
            try:
                bare.append(put(server, f"{server.root}/upload", args.mib, block))
            finally:
                server.stop()
        floors.append(hash_floor(block))
        e, b = emu[-1], bare[-1]
        if e.status != 200 or b.status != 200:
            raise RuntimeError(f"PUT answered {e.status} (emulator), {b.status} (bare)")
        print(
            f"  round {n + 1}: emulator {e.seconds:.2f} s (last byte -> 200: "
            f"{e.tail_seconds * 1000:.0f} ms) = {e.rate:.0f} MiB/s, "
            f"{e.cpu_per_gib:.2f} CPU s/GiB, then analysed in {e.after_seconds:.2f} s "
            f"({e.after_cpu_seconds:.2f} CPU s), RSS +{e.rss_growth_mib:.1f} MiB; "
            f"bare {b.seconds:.2f} s = {b.rate:.0f} MiB/s, "
            f"{b.cpu_per_gib:.2f} CPU s/GiB, RSS +{b.rss_growth_mib:.1f} MiB"
        )

    ratios = [e.rate / b.rate for e, b in zip(emu, bare, strict=True)]
    growth = max(e.rss_growth_mib for e in emu)
    print(row("emulator", [e.rate for e in emu], "MiB/s", "{:.0f}"))
    print(row("bare aiohttp to disk", [b.rate for b in bare], "MiB/s", "{:.0f}"))
    print(row("ratio emulator/bare", ratios, "", "{:.2f}"))
    print(row("emulator CPU", [e.cpu_per_gib for e in emu], "s/GiB", "{:.2f}"))
    print(row("bare CPU", [b.cpu_per_gib for b in bare], "s/GiB", "{:.2f}"))
    print(row("emulator after answer", [e.after_seconds for e in emu], "s", "{:.2f}"))
    print(row("md5+sha256 alone", floors, "s/GiB", "{:.2f}"))
    print(row("emulator RSS growth", [e.rss_growth_mib for e in emu], "MiB"))
    print(row("bare RSS growth", [b.rss_growth_mib for b in bare], "MiB"))
    ok_rate = median(ratios) >= TARGET
    ok_rss = growth < RSS_LIMIT_MIB
    print(
        f"{verdict(ok_rate)}: emulator throughput at {median(ratios):.0%} of bare "
        f"(target >= {TARGET:.0%})"
    )
    print(
        f"{verdict(ok_rss)}: emulator RSS grew by at most {growth:.1f} MiB "
        f"(limit < {RSS_LIMIT_MIB} MiB)"
    )
    return 0 if ok_rate and ok_rss else 1


if __name__ == "__main__":
    sys.exit(main())
