"""Cost of the pytest fixture per test, beside a server started per test.

One "test" is what a typical test does through the fixture's handle: a fresh tenant,
request-upload, a PUT of fixtures/sample.mp4 (2 s, 320x240), then wait_for_asset until
ready (manual clock: time is advanced, nothing sleeps). It runs:

- shared: on one in-process server started once, as `livepeer_emulator_server` does per
  session (or per xdist worker); its start, imports included, is the one-time cost;
- per-test server: the same flow plus starting and stopping an in-process server (own
  data dir) around it, what a fixture without a session server would cost;
- per-test process: the same flow plus a `livepeer-emulator serve --clock manual`
  subprocess started and stopped around it, like a CLI or container per test.

The two are interleaved (N shared tests, then one per-test-server test, repeated) so that
noise on the shared machine hits all alike. Loopback only; bounded in count.

With `--baseline-tree DIR` (a checkout of another commit, e.g. `git worktree add
/tmp/before 3586ae5`, the last one before playable outputs), the shared-server flow also
runs in a child process on that tree's own code (its server and its `Emulator` client),
batch for batch between this tree's batches, and the two medians are compared: the
issue 12 target is this tree's per-test median <= half the baseline's (exit 1 if not).

    .venv/bin/python bench/bench_fixture.py [--tests 200] [--per-test-servers 20]
                                            [--per-test-processes 10] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "fixtures" / "sample.mp4"
WORKER = "--worker-tree"  # the baseline child's own flag: run tests on that tree's code
if WORKER not in sys.argv:
    sys.path.insert(0, str(ROOT))
    from emulator.testing import Emulator, InProcessServer
    from tests.serving import ServerProcess


def one_test(base_url: str, emulator_class: Any = None) -> None:
    # A fresh tenant, as the function fixture makes.
    emulator = (emulator_class or Emulator)(base_url)
    asset = emulator.upload(SAMPLE)
    ready = emulator.wait_for_asset(asset["id"])
    assert ready["status"]["phase"] == "ready", ready


def worker(tree: Path) -> int:
    """The baseline child: a session server and client from `tree`'s code; runs the number
    of tests read from each stdin line and answers each batch's seconds as a JSON line."""
    sys.path.insert(0, str(tree))
    import emulator
    from emulator.testing import Emulator as TreeEmulator
    from emulator.testing import InProcessServer as TreeServer

    with tempfile.TemporaryDirectory(prefix="bench-fixture-baseline-") as tmp:
        session = TreeServer(Path(tmp) / "session").start()
        try:
            one_test(session.base_url, TreeEmulator)  # warm-up, as for this tree
            print(json.dumps({"ready": emulator.__file__}), flush=True)
            for line in sys.stdin:
                count = min(int(line), 2000)
                if count <= 0:
                    break
                times = []
                for _ in range(count):
                    t0 = time.perf_counter()
                    one_test(session.base_url, TreeEmulator)
                    times.append(time.perf_counter() - t0)
                print(json.dumps(times), flush=True)
        finally:
            session.stop()
    return 0


class Baseline:
    """The worker child, driven batch by batch."""

    def __init__(self, tree: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, WORKER, str(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.code = json.loads(self._line())["ready"]

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the baseline worker exited ({self.proc.wait(10)})")
        return line

    def run(self, count: int) -> list[float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{count}\n")
        self.proc.stdin.flush()
        times: list[float] = json.loads(self._line())
        return times

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (
        f"{name:<34} n={len(samples):<4} median {ms(statistics.median(samples))}"
        f"   p90 {ms(p90)}   min {ms(ordered[0])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=200, help="shared-server tests (200)")
    parser.add_argument(
        "--per-test-servers", type=int, default=20, help="tests with their own server (20)"
    )
    parser.add_argument(
        "--per-test-processes", type=int, default=10, help="tests with their own serve (10)"
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of another commit whose shared-server flow runs beside this one's",
    )
    parser.add_argument(WORKER, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_tree is not None:
        return worker(args.worker_tree)
    tests = max(1, min(args.tests, 2000))
    per_test = max(1, min(args.per_test_servers, 100))
    per_process = max(0, min(args.per_test_processes, per_test))

    with tempfile.TemporaryDirectory(prefix="bench-fixture-") as tmp:
        began = time.perf_counter()
        session = InProcessServer(Path(tmp) / "session").start()
        session_start = time.perf_counter() - began
        shared: list[float] = []
        own: list[float] = []
        own_start: list[float] = []
        proc: list[float] = []
        proc_start: list[float] = []
        before: list[float] = []
        baseline = Baseline(args.baseline_tree) if args.baseline_tree else None
        try:
            one_test(session.base_url)  # warm-up: first ffprobe run, SDK-free client path
            batch = max(1, tests // per_test)
            while len(shared) < tests or len(own) < per_test:
                count = min(batch, tests - len(shared))
                for _ in range(count):
                    t0 = time.perf_counter()
                    one_test(session.base_url)
                    shared.append(time.perf_counter() - t0)
                if baseline is not None and count:
                    before += baseline.run(count)
                if len(own) < per_test:
                    t0 = time.perf_counter()
                    server = InProcessServer(Path(tmp) / f"own{len(own)}").start()
                    started = time.perf_counter()
                    try:
                        one_test(server.base_url)
                    finally:
                        server.stop()
                    own.append(time.perf_counter() - t0)
                    own_start.append(started - t0)
                if len(proc) < per_process:
                    t0 = time.perf_counter()
                    process = ServerProcess(Path(tmp) / f"proc{len(proc)}", "--clock", "manual")
                    process.start()
                    started = time.perf_counter()
                    try:
                        one_test(process.root)
                    finally:
                        process.stop()
                    proc.append(time.perf_counter() - t0)
                    proc_start.append(started - t0)
        finally:
            session.stop()
            if baseline is not None:
                baseline.stop()

    print(
        f"sample: {SAMPLE.name}; {tests} shared-server tests, {per_test} per-test "
        f"in-process servers, {per_process} per-test serve processes"
    )
    print(f"{'session server start (one-time, imports incl.)':<48} {ms(session_start)}")
    print(summary("per test, shared session server", shared))
    print(summary("per test, own server (start+stop)", own))
    print(summary("  of which the server start", own_start))
    if proc:
        print(summary("per test, own serve process", proc))
        print(summary("  of which the process start", proc_start))
    base = statistics.median(shared)
    print(f"per-test server / shared server (medians): {statistics.median(own) / base:.1f}x")
    if proc:
        print(f"per-test process / shared server (medians): {statistics.median(proc) / base:.1f}x")
    total_shared = session_start + statistics.median(shared) * tests
    total_own = statistics.median(own) * tests
    total_proc = f", own process each ≈ {statistics.median(proc) * tests:.1f} s" if proc else ""
    print(
        f"{tests} tests: shared ≈ {total_shared:.1f} s (start included), "
        f"own server each ≈ {total_own:.1f} s{total_proc} (from the medians)"
    )
    if baseline is None:
        return 0
    print(f"baseline: {baseline.code} (its own server and client, in a child process)")
    print(summary("per test, shared, baseline tree", before))
    ratio = statistics.median(before) / base
    ok = ratio >= 2.0
    print(
        f"baseline / this tree (medians): {ratio:.2f}x; target >= 2x (issue 12): "
        f"{'PASS' if ok else 'MISS'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
