"""Load from wrk (a C load generator, Debian package `wrk`) for the read benchmarks, and the
quick ways those benchmarks fill a server with assets.

wrk instead of the harness's aiohttp client: a Python client on the other core cannot
send requests as fast as the servers answer them, so it limits how many requests reach
each loop iteration and understates the gap between the emulator and the bare handler
(0.86 with the aiohttp client against 0.65 with wrk in the profile of issue 16). There is
no fallback to a Python client for the same reason.

wrk runs on CLIENT_CPU (the servers are on SERVER_CPU), one thread, a Lua script that
picks a random id from a file of ids per request and sends the bench's Authorization
header to both servers, so both parse the same request.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from harness import (
    CLIENT_CPU,
    SAMPLE_MP4,
    SERVER_CPU,
    Server,
    call,
    cpu_seconds,
    cpus,
    poll_asset,
    request_upload,
)

WRK_TIMEOUT_S = 5  # wrk's per-request timeout; a timeout is counted as an error

# One Lua state per wrk thread (-t1: one), so the ids table is read once.
RANDOM_IDS_LUA = """\
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
math.randomseed(%(seed)d)
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  return wrk.format("GET", "%(prefix)s" .. ids[math.random(#ids)] .. "%(suffix)s")
end
"""

# A fixed path (the list page), same header.
FIXED_PATH_LUA = """\
wrk.headers["Authorization"] = "Bearer %(key)s"
request = function()
  return wrk.format("GET", "%(path)s")
end
"""


def find_wrk() -> str:
    """wrk's path; as root, installs Debian's package when it is missing (and says so)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing Debian's package (apt-get install -y wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, timeout=600)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "wrk (a C HTTP load generator) is needed for this benchmark and is not installed: "
        "`apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`. There is no fallback: "
        "a Python client understates the gap (bench/wrkload.py says why)."
    )


def write_ids(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return path


def lua_script(file: Path, template: str, **values: Any) -> Path:
    file.write_text(template % values, encoding="utf-8")
    return file


@dataclass
class WrkResult:
    requests: int
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors (connect, read, write, timeout)
    server_cpu: float  # the server's CPU seconds per wall second over the run (1.0 = a core)
    output: str


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)([a-z]+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str) -> tuple[int, float, float, float, int]:
    """(requests, req/s, p50 ms, p99 ms, errors) from wrk's --latency output."""
    requests = re.search(r"^\s*(\d+) requests in", output, re.M)
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", output, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (requests and rate and p50 and p99):
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return (
        int(requests.group(1)),
        float(rate.group(1)),
        _ms(p50.group(1)),
        _ms(p99.group(1)),
        errors,
    )


def run_wrk(
    wrk: str,
    url: str,
    script: Path,
    *,
    connections: int,
    seconds: float,
    server_pid: int | None = None,
) -> WrkResult:
    """wrk -t1 -c<connections> -d<seconds>s --latency -s <script> <url>, on CLIENT_CPU."""
    affinity = {CLIENT_CPU} if {SERVER_CPU, CLIENT_CPU} <= cpus() else None

    def preexec() -> None:
        if affinity:
            os.sched_setaffinity(0, affinity)

    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    argv += [f"--timeout={WRK_TIMEOUT_S}s", "-s", str(script), url]
    cpu_before = cpu_seconds(server_pid)
    done = subprocess.run(
        argv, capture_output=True, text=True, preexec_fn=preexec, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    requests, rate, p50, p99, errors = parse_wrk(done.stdout)
    wall = requests / rate if rate else seconds
    cpu = (cpu_seconds(server_pid) - cpu_before) / wall if server_pid else 0.0
    return WrkResult(requests, rate, p50, p99, errors, cpu, done.stdout)


WARM_UP_S = 3  # each server's untimed first run: connections opened, caches warm


def shown(name: str, r: WrkResult) -> str:
    return (
        f"{name} {r.rate:.0f} req/s p50 {r.p50_ms:.1f} ms p99 {r.p99_ms:.1f} ms "
        f"(server cpu {r.server_cpu:.0%})"
    )


def alternate(
    wrk: str,
    emulator: tuple[Server, Path],
    bare: tuple[Server, Path],
    *,
    connections: int,
    seconds: float,
    rounds: int,
) -> tuple[list[WrkResult], list[WrkResult]]:
    """wrk on each (server, Lua script) in turn: a warm-up each, then `rounds` rounds
    taking turns to go first, each round printed. Raises on any non-2xx answer."""

    def load(side: tuple[Server, Path], duration: float) -> WrkResult:
        server, script = side
        return run_wrk(
            wrk,
            server.root,
            script,
            connections=connections,
            seconds=duration,
            server_pid=server.pid,
        )

    load(emulator, WARM_UP_S)
    load(bare, WARM_UP_S)
    emu_runs: list[WrkResult] = []
    bare_runs: list[WrkResult] = []
    for n in range(rounds):
        if n % 2 == 0:
            e, b = load(emulator, seconds), load(bare, seconds)
        else:
            b, e = load(bare, seconds), load(emulator, seconds)
        if e.errors or b.errors:
            raise RuntimeError(f"errors: emulator {e.errors}, bare {b.errors}\n{e.output}")
        emu_runs.append(e)
        bare_runs.append(b)
        print(
            f"  round {n + 1}: {shown('emulator', e)} | {shown('bare', b)} | "
            f"ratio {e.rate / b.rate:.2f}, p99 {e.p99_ms / b.p99_ms:.1f}x",
            flush=True,
        )
    return emu_runs, bare_runs


def per_cpu_ratios(emu_runs: list[WrkResult], bare_runs: list[WrkResult]) -> list[float]:
    """Emulator over bare in requests per CPU second each server got: steadier than req/s
    when other work on the machine takes part of core 0 (a round where a server's cpu is
    well under 100% was disturbed); printed beside a verdict, not instead of it."""
    return [
        (e.rate / e.server_cpu) / (b.rate / b.server_cpu)
        for e, b in zip(emu_runs, bare_runs, strict=True)
        if e.server_cpu and b.server_cpu
    ]


# -- filling a server ------------------------------------------------------------------


async def _request_uploads(
    root: str, key: str, count: int, concurrency: int
) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    numbers = iter(range(count))
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:

        async def worker() -> None:
            for n in numbers:  # shared iterator: each number is taken once
                body = {"name": f"bench-{n:06d}"}
                async with session.post(f"{root}/api/asset/request-upload", json=body) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"request-upload answered {resp.status}")
                    bodies.append(await resp.json())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return bodies


def request_uploads(root: str, key: str, count: int, concurrency: int = 32) -> list[dict[str, Any]]:
    """`count` POST /api/asset/request-upload answers ({asset, task, url, ...}), made by
    `concurrency` keep-alive connections at once (about 750 a second on this machine)."""
    return asyncio.run(_request_uploads(root, key, count, concurrency))


async def _get_all(
    root: str, key: str, paths: list[str], concurrency: int, keep: bool
) -> list[bytes]:
    out: list[bytes] = [b""] * len(paths) if keep else []
    indexes = iter(range(len(paths)))
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:

        async def worker() -> None:
            for i in indexes:  # shared iterator: each path is asked once
                async with session.get(root + paths[i]) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET {paths[i]} answered {resp.status}")
                    if keep:
                        out[i] = body

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def get_all(
    root: str, key: str, paths: list[str], concurrency: int = 16, *, keep: bool = True
) -> list[bytes]:
    """GET root+path once for every path, each answer a 200; their bodies in order (none
    without `keep`). An aiohttp client: for reading things once, not for rates."""
    return asyncio.run(_get_all(root, key, paths, concurrency, keep))


def make_assets(server: Server, key: str, count: int) -> list[str]:
    """`count` assets in `key`'s tenant, their ids: one ready asset from sample.mp4 (a
    full document: source, hashes, tracks, playback) and count - 1 request-upload ones
    (a short `uploading` document each, ~350 B)."""
    upload = request_upload(server, key, "bench-ready")
    status, _ = call("PUT", str(upload["url"]), data=SAMPLE_MP4.read_bytes())
    if status != 200:
        raise RuntimeError(f"upload of sample.mp4 answered {status}")
    ready_id = str(upload["asset"]["id"])
    # Answered once the bytes are stored; hashing and probing follow (scenario instant).
    doc = poll_asset(server, key, ready_id, while_in=("waiting", "processing"))
    if doc["status"]["phase"] != "ready":
        raise RuntimeError(f"asset not ready: {doc}")
    bodies = request_uploads(server.root, key, count - 1)
    return [ready_id, *(str(b["asset"]["id"]) for b in bodies)]
