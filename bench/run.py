"""`make bench`: run the benchmarks of issue 16's targets, print one summary table of their
same-run ratios, and write that table into bench/README.md.

Each benchmark runs as its own subprocess (its output streamed as it comes) with
BENCH_SUMMARY naming a temp file, where harness.summarise() appends one JSON line per
figure: {bench, metric, emulator, baseline, unit, ratio, target, met}. The table is then
printed and replaces what stands between the markers below in bench/README.md (not when
--only picks a subset, nor with --no-readme). Exit status 1 when any target is missed or
any benchmark fails: a script that exits non-zero without reporting a missed target
(a crash, a timeout), or that reports no figure at all, is a row of its own, MISS.

    .venv/bin/python bench/run.py [--quick] [--all] [--only get_asset,memory] [--no-readme]
    make bench ARGS=--quick
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
README = BENCH / "README.md"
START = "<!-- bench-summary:start -->"
END = "<!-- bench-summary:end -->"
TIMEOUT_S = 20 * 60  # per script; far above any default run
NONE = "-"  # a cell without a figure


@dataclass(frozen=True)
class Bench:
    name: str  # bench/<name>.py
    args: tuple[str, ...] = ()  # a normal run
    quick: tuple[str, ...] = ()  # --quick: fewer/shorter rounds
    figures: bool = True  # reports its targets through summarise(); none is a MISS


# The benchmarks of issue 16's targets, in the order they run.
TARGETS = (
    Bench("get_asset", quick=("--rounds", "3", "--seconds", "5")),
    Bench("list_assets", quick=("--rounds", "3", "--seconds", "5")),
    Bench("startup", quick=("--rounds", "3")),
    Bench("upload", quick=("--rounds", "2")),
    Bench("memory"),
)
# --all: the other benchmarks too (earlier issues' targets; most report no figures
# through summarise, so they count by their exit status alone).
OTHERS = (
    Bench("bench_fixture", figures=False),
    Bench("stress_uploads", quick=("--rounds", "3"), figures=False),
    Bench("bench_tus", figures=False),
    Bench("bench_outputs", quick=("--transcode-rounds", "1", "--rounds", "2"), figures=False),
    Bench("dashboard_first_paint", figures=False),
    Bench("dashboard_live_cpu", figures=False),
)


@dataclass
class Outcome:
    bench: Bench
    returncode: int | None  # None: killed at the timeout
    seconds: float
    lines: list[dict[str, Any]] = field(default_factory=list)


def run_one(bench: Bench, quick: bool) -> Outcome:
    argv = [sys.executable, "-u", str(BENCH / f"{bench.name}.py")]
    argv += list(bench.quick if quick else bench.args)
    print(f"\n== {bench.name}.py {' '.join(argv[3:])}".rstrip(), flush=True)
    fd, summary = tempfile.mkstemp(prefix=f"bench-{bench.name}-", suffix=".jsonl")
    os.close(fd)
    started = time.perf_counter()
    code: int | None
    try:
        env = {**os.environ, "BENCH_SUMMARY": summary, "PYTHONUNBUFFERED": "1"}
        with subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group: a timeout ends it and its servers
        ) as proc:
            killed: list[bool] = []

            def kill() -> None:  # a hung benchmark prints nothing: a timer, not the reads
                killed.append(True)
                os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(TIMEOUT_S, kill)
            timer.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    print(f"  {line}", end="", flush=True)
                code = proc.wait()
            finally:
                timer.cancel()
            if killed:
                code = None
                print(f"  (killed after {TIMEOUT_S} s)", flush=True)
        text = Path(summary).read_text(encoding="utf-8")
        lines = [json.loads(x) for x in text.splitlines() if x.strip()]
    finally:
        Path(summary).unlink(missing_ok=True)
    elapsed = time.perf_counter() - started
    print(f"== {bench.name}: exit {code}, {elapsed:.0f} s", flush=True)
    return Outcome(bench, code, elapsed, lines)


def number(value: float | None, unit: str = "") -> str:
    if value is None:
        return NONE
    size = abs(value)
    text = f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def result(met: bool | None) -> str:
    return NONE if met is None else "PASS" if met else "MISS"


def rows(outcomes: list[Outcome]) -> tuple[list[list[str]], bool]:
    """Table rows and whether everything passed."""
    table: list[list[str]] = []
    ok = True
    for o in outcomes:
        script = f"`{o.bench.name}.py`"
        for line in o.lines:
            met = line.get("met")
            ok = ok and met is not False
            table.append(
                [
                    script,
                    str(line["metric"]),
                    number(line.get("emulator"), line.get("unit", "")),
                    number(line.get("baseline"), line.get("unit", "")),
                    number(line.get("ratio")),
                    str(line.get("target") or NONE),
                    result(met),
                ]
            )
        reported_miss = any(line.get("met") is False for line in o.lines)
        if o.returncode is None:
            why = f"killed after {TIMEOUT_S // 60} min"
        elif o.returncode != 0 and not reported_miss:
            why = f"failed: exit {o.returncode} (see its output)"
        elif not o.lines and o.bench.figures:
            why = "reported no figures"
        elif not o.lines:
            table.append(
                [script, f"exit {o.returncode} (no figures)", NONE, NONE, NONE, NONE, "PASS"]
            )
            continue
        else:
            continue
        ok = False
        table.append([script, why, *[NONE] * 4, "MISS"])
    return table, ok


def markdown(table: list[list[str]]) -> str:
    head = ["script", "metric", "emulator", "baseline", "ratio", "target", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in table]
    return "\n".join(lines)


def git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def context(started: datetime.datetime, load_before: str, quick: bool, minutes: float) -> str:
    commit = git("rev-parse", "--short", "HEAD") or "?"
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    return (
        f"{started:%Y-%m-%d %H:%M} UTC, commit {commit}{dirty}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {load_before} "
        f"(start) / {loadavg()} (end), {minutes:.0f} min"
        + (", `--quick` (fewer, shorter rounds)" if quick else "")
    )


def write_readme(block: str) -> bool:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"bench/README.md has no {START} … {END} markers: not rewritten")
        return False
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    README.write_text(f"{before}{START}\n{block}\n{END}{after}", encoding="utf-8")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--all", action="store_true", help="the other benchmarks too")
    parser.add_argument("--only", help="comma-separated names (no README rewrite)")
    parser.add_argument("--no-readme", action="store_true", help="leave bench/README.md as is")
    args = parser.parse_args()

    chosen = list(TARGETS) + (list(OTHERS) if args.all else [])
    if args.only:
        known = {b.name: b for b in (*TARGETS, *OTHERS)}
        names = [n.strip().removesuffix(".py") for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(known)}")
        chosen = [known[n] for n in names]

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = loadavg()
    began = time.perf_counter()
    outcomes = [run_one(b, args.quick) for b in chosen]
    table, ok = rows(outcomes)
    block = f"{context(started, load_before, args.quick, (time.perf_counter() - began) / 60)}\n\n"
    block += markdown(table)
    print("\n" + block + "\n")
    if not (args.only or args.no_readme) and write_readme(block):
        print("bench/README.md: summary table rewritten")
    missed = sum(1 for r in table if r[-1] == "MISS")
    print(f"{'all targets met' if ok else f'{missed} MISS'} ({len(outcomes)} benchmarks)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
