"""Time from process start to the first 200 on the health endpoint: `livepeer-emulator
serve` (fresh data dir each round, so it creates its database and finds ffprobe) against
bench/bare_app.py `health` (a bare aiohttp app), alternating, pinned to core 0, polled
every 2 ms from core 1. Also the import time of the modules `serve` loads, against
`import aiohttp.web, aiosqlite` (what the bare app imports), alternating the same way.

Target (issue 16): the median of the per-round ratios emulator/bare is at most 1.2; the
script exits 1 when it is missed.

Both servers start from compiled bytecode, as an installed package does: the children
get PYTHONPYCACHEPREFIX (a scratch dir) without PYTHONDONTWRITEBYTECODE, and one untimed
warm-up start of each fills it. Otherwise a module edited since its .pyc was written is
compiled on every start, and the figure depends on which files were touched last.

    .venv/bin/python bench/startup.py [--rounds 11]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import (
    SERVER_CPU,
    bare_command,
    cpus,
    emulator_command,
    free_port,
    median,
    pin_self,
    row,
    scratch,
    spawn,
    summarise,
    verdict,
    wait_healthy,
)

TARGET = 1.2  # emulator start / bare start, median of the rounds' ratios
# What `serve` imports before it answers (emulator.cli imports the rest lazily), and what
# bench/bare_app.py imports.
EMULATOR_IMPORTS = "import emulator.cli, emulator.app"
BARE_IMPORTS = "import aiohttp.web, aiosqlite"


def use_bytecode_cache(where: Path) -> None:
    """Let the children (servers and import timings) read and write compiled bytecode in
    `where` instead of the source tree, whatever this shell's PYTHONDONTWRITEBYTECODE."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(where)


def start_ms(name: str, tmp: Path, data_dir: Path) -> float:
    """Spawn one server, wait for its first 200 on health, stop it: ms from the spawn."""
    port = free_port()
    if name == "emulator":
        argv = [*emulator_command(), "serve", "--port", str(port), "--data-dir", str(data_dir)]
        path = "/_emulator/health"
    else:
        argv, path = bare_command("health", port), "/health"
    server = spawn(name, argv, port, tmp, pin=True)
    try:
        return wait_healthy(server, path) * 1000
    finally:
        server.stop()


def import_ms(code: str) -> float:
    """Wall ms of a fresh interpreter running `code` (an import line), on the server core."""
    affinity = {SERVER_CPU} if SERVER_CPU in cpus() else None

    def preexec() -> None:
        if affinity:
            os.sched_setaffinity(0, affinity)

    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], preexec_fn=preexec)
    # wait() without a timeout blocks in waitpid; with one it polls with sleeps growing to
    # 50 ms, which rounded every figure up to the next poll. The timer is the time limit.
    limit = threading.Timer(60, child.kill)
    limit.start()
    try:
        returncode = child.wait()
    finally:
        limit.cancel()
    elapsed = (time.perf_counter() - started) * 1000
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, child.args)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # A start takes ~0.25 s: more rounds give a steadier median at little cost.
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    pin_self()

    emu_ms: list[float] = []
    bare_ms: list[float] = []
    emu_import_ms: list[float] = []
    bare_import_ms: list[float] = []
    print(f"process start -> first 200 on health: {args.rounds} rounds, server on core 0")
    with scratch("bench-startup-") as tmp:
        use_bytecode_cache(tmp / "pycache")
        # Untimed: compiles both servers' modules into the cache above.
        start_ms("emulator", tmp, tmp / "data-warm-up")
        start_ms("bare", tmp, tmp)
        for n in range(args.rounds):
            emu_ms.append(start_ms("emulator", tmp, tmp / f"data-{n}"))
            bare_ms.append(start_ms("bare", tmp, tmp))
            emu_import_ms.append(import_ms(EMULATOR_IMPORTS))
            bare_import_ms.append(import_ms(BARE_IMPORTS))
            print(
                f"  round {n + 1}: emulator {emu_ms[-1]:.0f} ms, bare {bare_ms[-1]:.0f} ms; "
                f"imports {emu_import_ms[-1]:.0f} ms vs {bare_import_ms[-1]:.0f} ms"
            )

    print(row("emulator serve", emu_ms, "ms", "{:.0f}"))
    print(row("bare aiohttp app", bare_ms, "ms", "{:.0f}"))
    ratios = [e / b for e, b in zip(emu_ms, bare_ms, strict=True)]
    print(row("ratio emulator/bare", ratios, "", "{:.2f}"))
    print(row(f"python -c {EMULATOR_IMPORTS!r}", emu_import_ms, "ms", "{:.0f}"))
    print(row(f"python -c {BARE_IMPORTS!r}", bare_import_ms, "ms", "{:.0f}"))
    extra_imports = [e - b for e, b in zip(emu_import_ms, bare_import_ms, strict=True)]
    print(
        f"emulator starts in {median(emu_ms):.0f} ms, "
        f"{median(emu_ms) - median(bare_ms):.0f} ms more than a bare aiohttp app; "
        f"its imports take {median(extra_imports):.0f} ms more than the bare app's "
        f"(median of the rounds' differences)"
    )
    ratio = median(ratios)
    met = ratio <= TARGET
    print(f"{verdict(met)}: median ratio {ratio:.2f} (target <= {TARGET})")
    summarise(
        "startup",
        "start → first 200 on health",
        round(median(emu_ms), 1),
        round(median(bare_ms), 1),
        "ms",
        round(ratio, 3),
        f"≤ {TARGET}× bare",  # noqa: RUF001 (the sign the issue writes)
        met,
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
