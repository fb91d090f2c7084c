"""tus uploads in bounded memory: a 2 GiB tus upload in 8 MiB PATCHes and a 2 GiB direct
PUT, each against a bare aiohttp handler streaming the same bytes to disk, then 50
concurrent tus uploads of 20 MiB each (issue 3).

Each round starts a fresh `livepeer-emulator serve --scenario instant` (temp data dir,
deleted afterwards) and bench/bare_app.py `upload`. The body is a real mp4: fixtures'
sample.mp4 followed by one `free` box (which mp4 readers skip) filling it up to the size,
generated on the fly from one random 1 MiB block, so nothing large is kept on the client
and the asset ends `ready` with a sha256 the script checks against its own. Wall time runs
from the first byte sent to the last response: for tus that is the creation POST plus
every PATCH (the last one includes the emulator's move into place); for the PUT, the
whole request. The emulator hashes and probes after answering, while the asset is
`waiting`; the check that follows polls until that is done (bench/upload.py times it).
While each transfer runs, the server's VmRSS is sampled every 10 ms (growth = highest
sample or VmHWM minus VmRSS before).

Targets: RSS growth < 64 MiB, throughput >= 50% of the bare handler's; 50 concurrent
uploads all complete with matching hashes.

    .venv/bin/python bench/bench_tus.py [--rounds 1] [--mib 2048] [--chunk-mib 8]
                                        [--uploads 50] [--upload-mib 20] [--one-core]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness import (
    SAMPLE_MP4,
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

KEY = "bench-tus"
BLOCK = 1024 * 1024
RSS_LIMIT_MIB = 64
TARGET = 0.5
TUS = {"Tus-Resumable": "1.0.0"}


class Body:
    """A `mib` MiB mp4: sample.mp4 + a `free` box, as block 0 then a repeated random block."""

    def __init__(self, mib: int, seed: int) -> None:
        sample = SAMPLE_MP4.read_bytes()
        rng = random.Random(seed)
        self.filler = rng.randbytes(BLOCK)
        self.size = mib * BLOCK
        free = struct.pack(">I4s", self.size - len(sample), b"free")
        head = sample + free
        self.first = head + self.filler[: BLOCK - len(head)]
        self.mib = mib
        digest = hashlib.sha256()
        for block in self.blocks(0, mib):
            digest.update(block)
        self.sha256 = digest.hexdigest()

    def blocks(self, start: int, stop: int) -> Iterator[bytes]:
        for i in range(start, stop):
            yield self.first if i == 0 else self.filler


@dataclass
class Transfer:
    seconds: float
    rss_growth_mib: float
    cpu_seconds: float
    mib: int

    @property
    def rate(self) -> float:
        return self.mib / self.seconds


class Connection:
    """One keep-alive HTTP/1.1 connection, enough of a client for PUT/POST/PATCH."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, root: str) -> Connection:
        parts = urlsplit(root)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def send(
        self, method: str, target: str, headers: dict[str, str], blocks: Iterator[bytes], size: int
    ) -> tuple[int, dict[str, str]]:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {size}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        for block in blocks:
            self.writer.write(block)
            await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        answer: dict[str, str] = {}
        while (line := (await self.reader.readline()).decode().strip()) != "":
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
        await self.reader.readexactly(int(answer.get("content-length", "0")))
        return status, answer

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def tus_upload(endpoint: str, body: Body, chunk_mib: int) -> str:
    """POST then PATCH `body` in `chunk_mib` MiB pieces; returns the upload URL."""
    parts = urlsplit(endpoint)
    conn = await Connection.open(f"{parts.scheme}://{parts.netloc}")
    try:
        status, answer = await conn.send(
            "POST",
            f"{parts.path}?{parts.query}",
            {**TUS, "Upload-Length": str(body.size)},
            iter(()),
            0,
        )
        if status != 201:
            raise RuntimeError(f"tus creation answered {status}")
        location = answer["location"]
        path = urlsplit(location).path
        for start in range(0, body.mib, chunk_mib):
            stop = min(start + chunk_mib, body.mib)
            status, answer = await conn.send(
                "PATCH",
                path,
                {
                    **TUS,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(start * BLOCK),
                },
                body.blocks(start, stop),
                (stop - start) * BLOCK,
            )
            if status != 204 or int(answer["upload-offset"]) != stop * BLOCK:
                raise RuntimeError(f"PATCH at {start} MiB answered {status} {answer}")
        return location
    finally:
        await conn.close()


async def put(url: str, body: Body) -> None:
    parts = urlsplit(url)
    conn = await Connection.open(f"{parts.scheme}://{parts.netloc}")
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/octet-stream"}
        status, _ = await conn.send("PUT", target, headers, body.blocks(0, body.mib), body.size)
        if status != 200:
            raise RuntimeError(f"PUT answered {status}")
    finally:
        await conn.close()


def measure(server: Server, mib: int, job: object) -> Transfer:
    """Run the coroutine `job` against `server`, sampling its memory and CPU."""
    before_kib = proc_status_kib(server.pid, "VmRSS")
    cpu = cpu_seconds(server.pid)
    sampler = RssSampler(server.pid)
    sampler.start()
    started = time.perf_counter()
    try:
        asyncio.run(job)  # type: ignore[arg-type]
    finally:
        seconds = time.perf_counter() - started
        sampler.halt.set()
        sampler.join()
    cpu = cpu_seconds(server.pid) - cpu
    peak_kib = max(sampler.peak_kib, proc_status_kib(server.pid, "VmHWM"))
    return Transfer(seconds, (peak_kib - before_kib) / 1024, cpu, mib)


def check_ready(server: Server, asset_id: str, body: Body) -> None:
    """Wait out hashing, probing and the (instant) timeline, then check the result."""
    asset = poll_asset(server, KEY, asset_id, while_in=("waiting", "processing"))
    if asset["status"]["phase"] != "ready":
        raise RuntimeError(f"asset {asset_id} is not ready: {asset}")
    if {"hash": body.sha256, "algorithm": "sha256"} not in asset["hash"]:
        raise RuntimeError(f"asset {asset_id} sha256 differs from the source's")


def line(name: str, t: Transfer) -> str:
    return (
        f"{name} {t.seconds:.2f} s = {t.rate:.0f} MiB/s, "
        f"{t.cpu_seconds * 1024 / t.mib:.2f} CPU s/GiB, RSS +{t.rss_growth_mib:.1f} MiB"
    )


def big_round(n: int, body: Body, chunk_mib: int, pin: bool) -> tuple[Transfer, ...]:
    with scratch("bench-tus-") as tmp:
        server = start_emulator(tmp / "data", tmp, "--scenario", "instant", pin=pin)
        try:
            created = request_upload(server, KEY, f"tus {n}")
            tus = measure(server, body.mib, tus_upload(created["tusEndpoint"], body, chunk_mib))
            check_ready(server, created["asset"]["id"], body)
        finally:
            server.stop()
    with scratch("bench-tus-") as tmp:
        server = start_emulator(tmp / "data", tmp, "--scenario", "instant", pin=pin)
        try:
            created = request_upload(server, KEY, f"put {n}")
            direct = measure(server, body.mib, put(created["url"], body))
            check_ready(server, created["asset"]["id"], body)
        finally:
            server.stop()
    with scratch("bench-tus-") as tmp:
        (tmp / "sink").mkdir()
        server = start_bare("upload", tmp, "--dir", str(tmp / "sink"), pin=pin)
        try:
            bare = measure(server, body.mib, put(f"{server.root}/upload", body))
        finally:
            server.stop()
    print(f"  round {n + 1}: {line('tus', tus)}")
    print(f"           {line('direct PUT', direct)}")
    print(f"           {line('bare', bare)}")
    return tus, direct, bare


def concurrent_round(uploads: int, mib: int, chunk_mib: int, pin: bool) -> tuple[bool, Transfer]:
    bodies = [Body(mib, seed) for seed in range(uploads)]
    with scratch("bench-tus-") as tmp:
        server = start_emulator(tmp / "data", tmp, "--scenario", "instant", pin=pin)
        try:
            created = [request_upload(server, KEY, f"many {i}") for i in range(uploads)]

            async def all_of_them() -> None:
                await asyncio.gather(
                    *(
                        tus_upload(c["tusEndpoint"], b, chunk_mib)
                        for c, b in zip(created, bodies, strict=True)
                    )
                )

            transfer = measure(server, uploads * mib, all_of_them())
            bad = 0
            for c, b in zip(created, bodies, strict=True):
                try:
                    check_ready(server, c["asset"]["id"], b)
                except RuntimeError as exc:
                    print(f"  {exc}")
                    bad += 1
        finally:
            server.stop()
    print(
        f"  {uploads} x {mib} MiB in {chunk_mib} MiB PATCHes: {transfer.seconds:.2f} s "
        f"= {transfer.rate:.0f} MiB/s total, RSS +{transfer.rss_growth_mib:.1f} MiB; "
        f"{uploads - bad}/{uploads} ready with matching sha256"
    )
    return bad == 0, transfer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--mib", type=int, default=2048, help="size of the big upload")
    parser.add_argument("--chunk-mib", type=int, default=8, help="tus PATCH size")
    parser.add_argument("--uploads", type=int, default=50, help="concurrent tus uploads")
    parser.add_argument("--upload-mib", type=int, default=20, help="size of each of those")
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="pin the servers to core 0 and the client to core 1 (default: no pinning)",
    )
    args = parser.parse_args()
    if args.one_core:
        pin_self()
    where = "servers on core 0, client on core 1" if args.one_core else "no CPU pinning"
    print(
        f"{args.mib} MiB: tus in {args.chunk_mib} MiB PATCHes, direct PUT, bare PUT; "
        f"{args.rounds} round(s); {where}"
    )
    body = Body(args.mib, seed=os.getpid())
    results = [big_round(n, body, args.chunk_mib, args.one_core) for n in range(args.rounds)]
    tus = [r[0] for r in results]
    direct = [r[1] for r in results]
    bare = [r[2] for r in results]
    print(row("tus", [t.rate for t in tus], "MiB/s", "{:.0f}"))
    print(row("direct PUT", [t.rate for t in direct], "MiB/s", "{:.0f}"))
    print(row("bare aiohttp to disk", [t.rate for t in bare], "MiB/s", "{:.0f}"))
    tus_ratio = [t.rate / b.rate for t, b in zip(tus, bare, strict=True)]
    put_ratio = [t.rate / b.rate for t, b in zip(direct, bare, strict=True)]
    print(row("ratio tus/bare", tus_ratio, "", "{:.2f}"))
    print(row("ratio direct PUT/bare", put_ratio, "", "{:.2f}"))
    growth = max(t.rss_growth_mib for t in tus + direct)
    ok = {
        "tus throughput": median(tus_ratio) >= TARGET,
        "direct PUT throughput": median(put_ratio) >= TARGET,
        "RSS": growth < RSS_LIMIT_MIB,
    }
    print(f"{verdict(ok['tus throughput'])}: tus at {median(tus_ratio):.0%} of bare (>= 50%)")
    print(
        f"{verdict(ok['direct PUT throughput'])}: direct PUT at {median(put_ratio):.0%} "
        "of bare (>= 50%)"
    )
    print(f"{verdict(ok['RSS'])}: RSS grew by at most {growth:.1f} MiB (< {RSS_LIMIT_MIB} MiB)")
    if args.uploads:
        all_ok, _ = concurrent_round(args.uploads, args.upload_mib, args.chunk_mib, args.one_core)
        ok["concurrent"] = all_ok
        print(f"{verdict(all_ok)}: {args.uploads} concurrent tus uploads, hashes match")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
