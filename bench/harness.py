"""Shared pieces of the benchmarks: start servers pinned to a core, wait for them, load
them with a bounded HTTP client, sample memory, summarise rounds.

Everything talks to 127.0.0.1 only. Servers run on core SERVER_CPU and the load
generator on core CLIENT_CPU, so the two do not fight over one core; on a shared, noisy
machine only ratios measured in the same run mean anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SAMPLE_MP4 = REPO / "fixtures" / "sample.mp4"
SERVER_CPU = 0
CLIENT_CPU = 1


def emulator_command() -> list[str]:
    """The installed console script beside this interpreter (the venv's), else -m."""
    script = Path(sys.executable).parent / "livepeer-emulator"
    return [str(script)] if script.exists() else [sys.executable, "-m", "emulator"]


def bare_command(mode: str, port: int, *extra: str) -> list[str]:
    return [sys.executable, str(BENCH / "bare_app.py"), mode, "--port", str(port), *extra]


def cpus() -> set[int]:
    return set(os.sched_getaffinity(0))


def pin_self() -> None:
    """Put the load generator on its own core when there are two to choose from."""
    if {SERVER_CPU, CLIENT_CPU} <= cpus():
        os.sched_setaffinity(0, {CLIENT_CPU})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    """A server subprocess; `pinned` means it runs on SERVER_CPU only."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    started_at: float  # perf_counter() just before the process was spawned
    log: Path

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn(name: str, argv: Sequence[str], port: int, log_dir: Path, *, pin: bool) -> Server:
    """Start `argv`; with `pin`, on SERVER_CPU only (set before exec, like taskset)."""
    log = log_dir / f"{name}-{port}.log"
    affinity = {SERVER_CPU} if pin and SERVER_CPU in cpus() else None

    def preexec() -> None:
        if affinity:
            os.sched_setaffinity(0, affinity)

    with log.open("ab") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
        )
    return Server(name, proc, port, started, log)


def wait_healthy(server: Server, path: str, timeout: float = 30.0) -> float:
    """Poll `path` until it answers 200; seconds from spawn to that first 200."""
    deadline = time.perf_counter() + timeout
    url = server.root + path
    while time.perf_counter() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited early:\n{server.log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - server.started_at
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.002)
    raise RuntimeError(f"{server.name} not healthy after {timeout}s:\n{server.log.read_text()}")


def start_emulator(
    data_dir: Path, log_dir: Path, *args: str, pin: bool = True, timeout: float = 30.0
) -> Server:
    port = free_port()
    argv = [*emulator_command(), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    server = spawn("emulator", [*argv, *args], port, log_dir, pin=pin)
    wait_healthy(server, "/_emulator/health", timeout)
    return server


def start_bare(mode: str, log_dir: Path, *extra: str, pin: bool = True) -> Server:
    port = free_port()
    server = spawn(f"bare-{mode}", bare_command(mode, port, *extra), port, log_dir, pin=pin)
    wait_healthy(server, "/health")
    return server


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temp dir removed afterwards, whatever happens (media files can be large)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def call(
    method: str, url: str, body: Any = None, key: str | None = None, data: bytes | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def request_upload(server: Server, key: str, name: str) -> dict[str, Any]:
    status, body = call("POST", server.root + "/api/asset/request-upload", {"name": name}, key)
    if status != 200:
        raise RuntimeError(f"request-upload answered {status}: {body}")
    assert isinstance(body, dict)
    return body


def poll_asset(
    server: Server, key: str, asset_id: str, *, while_in: tuple[str, ...], timeout: float = 120.0
) -> dict[str, Any]:
    """Poll (a benchmark may; tests never do) while the asset's phase is one of `while_in`,
    which covers the hashing and probing the emulator does after answering an upload."""
    deadline = time.monotonic() + timeout
    while True:
        status, asset = call("GET", f"{server.root}/api/asset/{asset_id}", key=key)
        if status != 200:
            raise RuntimeError(f"GET asset {asset_id} answered {status}: {asset}")
        if asset["status"]["phase"] not in while_in:
            return dict(asset)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"asset {asset_id} still {asset['status']['phase']} after {timeout:g} s"
            )
        time.sleep(0.01)


class RssSampler(threading.Thread):
    """Highest VmRSS of a process, sampled until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kib = proc_status_kib(pid, "VmRSS")
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.01):
            self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))


# -- load generation -------------------------------------------------------------------


@dataclass
class Load:
    requests: int
    errors: int
    seconds: float
    client_cpu: float  # the load generator's CPU seconds per wall second (1.0 = a core)
    server_cpu: float  # the same for the server process, when its pid was given

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


async def _load(
    url: str, headers: dict[str, str], connections: int, seconds: float, pid: int | None
) -> Load:
    done = errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker(stop_at: float) -> None:
            nonlocal done, errors
            while time.perf_counter() < stop_at:
                async with session.get(url) as resp:
                    await resp.read()
                    if resp.status == 200:
                        done += 1
                    else:
                        errors += 1

        # A short warm-up opens the connections and warms caches; it is not counted.
        await asyncio.gather(*(worker(time.perf_counter() + 0.3) for _ in range(connections)))
        done = errors = 0
        cpu, server_cpu = time.process_time(), cpu_seconds(pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(connections)))
        elapsed = time.perf_counter() - started
        cpu, server_cpu = time.process_time() - cpu, cpu_seconds(pid) - server_cpu
    return Load(done, errors, elapsed, cpu / elapsed, server_cpu / elapsed)


def load(
    url: str, headers: dict[str, str], connections: int, seconds: float, pid: int | None = None
) -> Load:
    """GET `url` over `connections` keep-alive connections for `seconds`."""
    return asyncio.run(_load(url, headers, connections, seconds, pid))


def cpu_seconds(pid: int | None) -> float:
    """User+system CPU seconds a process has used so far (0 without a pid)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- memory ----------------------------------------------------------------------------


def proc_status_kib(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/PID/status, in KiB (the kernel's unit)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


# -- reporting -------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def row(label: str, values: Sequence[float], unit: str, fmt: str = "{:.1f}") -> str:
    shown = ", ".join(fmt.format(v) for v in values)
    return f"  {label:<24} median {fmt.format(median(values)):>10} {unit:<8} rounds: {shown}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


SUMMARY_ENV = "BENCH_SUMMARY"


def summarise(
    bench: str,
    metric: str,
    emulator: float,
    baseline: float | None,
    unit: str,
    ratio: float | None,
    target: str,
    met: bool | None,
) -> None:
    """Print one summary line and, under `make bench` (bench/run.py sets BENCH_SUMMARY to
    a file), append it there as JSON so the runner can build one table of same-run ratios.

    `ratio` is emulator/baseline in whatever sense the target states (e.g. req/s over
    req/s, or ms over ms); `met` is None for figures reported without a target.
    """
    line = {
        "bench": bench,
        "metric": metric,
        "emulator": emulator,
        "baseline": baseline,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "met": met,
    }
    shown = "" if met is None else f"{verdict(met)} "
    ratio_text = "" if ratio is None else f" ratio {ratio:.2f}"
    print(f"summary: {shown}{metric}: {emulator:g} {unit}{ratio_text} (target {target or '-'})")
    path = os.environ.get(SUMMARY_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
