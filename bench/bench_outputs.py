"""Playable outputs (issue 12): what making HLS, MP4s and thumbnails costs, each part
against a baseline measured in the same run, rounds alternated.

- instant: `serve --scenario instant --outputs copy` (real clock) and, as the baseline, the
  same with `--outputs none`, alternating. Each round PUTs fixtures/sample.mp4 (2 s,
  320x240) with a few random bytes in a trailing mp4 `free` box, so the content cache
  never hits, then polls GET /api/asset/<id> every 2 ms from the PUT's answer until
  `ready` (polling is the figure; the master playlist's mtime in the server's cache, the
  last file the encoder writes, splits it server-side). HLS, MP4 and thumbnails are then
  checked in playback info and the playlist fetched. Beside it, in this process on the
  same bytes: hashing, Prober.probe, each Encoder.commands run alone, and
  Encoder.make_outputs (the runs at once, as the server does). Target: ready <= 0.5 s.
- copy / transcode: a 60 s 1280x720 H.264/AAC source (keyframe every 2 s, ~3 Mb/s) made
  once per run by ffmpeg. copy: Encoder.make_outputs with plan_outputs(..., "copy") against
  a bare `ffmpeg -i src -c copy -f hls -hls_playlist_type vod` (target <= 2x). transcode:
  Encoder.make_outputs with plan_outputs(..., "transcode") against the encoder's own
  command for the same ladder with MP4s and thumbnails left out and its tee outputs turned
  into plain `-f hls` ones: the same decode, filter graph and x264/AAC settings, so the
  ratio is what the MP4s, thumbnails, progress reading and checks add (target <= 1.3x).
- repeat: one instant server; per round the 60 s source and sample.mp4 (fresh bytes each
  round) are uploaded twice: the second upload, same bytes, must reach `ready` in <= 20%
  of the first's time, from the PUT's answer as in "instant" (what the cache can save;
  PUT sent -> `ready`, the transfer itself in both, is printed beside it).
- memory: 10 distinct 10 s 720p clips uploaded at once to a fresh instant server; the
  server's VmRSS (its own, not ffmpeg's) is sampled every 10 ms from /proc/PID/status
  until all are ready. Growth = peak minus the RSS at rest after one warm-up asset
  (growth since start is printed too). Baseline: the same with `--outputs none`.
  Target: growth <= 64 MiB.

Nothing is pinned: the server's ffmpeg runs use both cores, as they would for a user.
Everything is on 127.0.0.1, bounded in rounds and time, in temp dirs removed afterwards.
Transcoding 60 s of 720p to the ladder takes tens of seconds per run, hence one round by
default. Exit status 1 when a target is missed.

    .venv/bin/python bench/bench_outputs.py [--parts instant,copy,transcode,repeat,memory]
        [--rounds 3] [--instant-rounds 9] [--transcode-rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    SAMPLE_MP4,
    RssSampler,
    Server,
    call,
    median,
    proc_status_kib,
    request_upload,
    scratch,
    start_emulator,
    verdict,
)

sys.path.insert(0, str(REPO))

from emulator import blobs, renditions
from emulator.media import Encoder, Prober, find_tools

PARTS = ("instant", "copy", "transcode", "repeat", "memory")
POLL_SECONDS = 0.002
READY_TIMEOUT = 300.0  # seconds an asset may take to get ready before the bench gives up
MIB = 1024 * 1024
TOOLS = find_tools(None, None)


# -- sources ----------------------------------------------------------------------------


def variant(source: Path, folder: Path) -> Path:
    """`source` plus a `free` box of random bytes (mp4 readers skip it): new bytes, new
    SHA-256, so the server's content cache misses."""
    target = folder / f"{source.stem}-{uuid.uuid4().hex[:8]}{source.suffix}"
    shutil.copyfile(source, target)
    with target.open("ab") as out:
        payload = os.urandom(24)
        out.write(struct.pack(">I4s", 8 + len(payload), b"free") + payload)
    return target


def generate(target: Path, seconds: int) -> Path:
    """A 1280x720 30 fps H.264 (keyframe every 2 s, ~3 Mb/s) + AAC mp4 of `seconds`."""
    if target.exists():
        return target
    began = time.perf_counter()
    argv = [
        TOOLS.ffmpeg or "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-b:v", "3M", "-maxrate", "3M", "-bufsize", "6M",
        "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(target),
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=600)
    size = target.stat().st_size / MIB
    took = time.perf_counter() - began
    print(f"generated {target.name}: {seconds} s 1280x720, {size:.1f} MiB in {took:.1f} s")
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


# -- the server side ----------------------------------------------------------------------


@dataclasses.dataclass
class Upload:
    put: float  # PUT sent -> answered, seconds
    ready: float  # PUT answered -> `ready` seen, seconds
    answered_wall: float  # time.time() at the answer (to compare with file mtimes)
    asset: dict[str, Any]

    @property
    def total(self) -> float:
        return self.put + self.ready


def upload(server: Server, key: str, path: Path) -> Upload:
    created = request_upload(server, key, path.name)
    data = path.read_bytes()
    sent = time.perf_counter()
    status, body = call("PUT", created["url"], data=data)
    answered = time.perf_counter()
    answered_wall = time.time()
    if status != 200:
        raise RuntimeError(f"PUT answered {status}: {body}")
    asset = wait_ready(server, key, created["asset"]["id"])
    return Upload(answered - sent, time.perf_counter() - answered, answered_wall, asset)


def upload_into(server: Server, key: str, path: Path, failures: list[BaseException]) -> None:
    """upload() in a thread, its failure kept in `failures`."""
    try:
        upload(server, key, path)
    except BaseException as exc:  # reported by the caller
        failures.append(exc)


def wait_ready(server: Server, key: str, asset_id: str) -> dict[str, Any]:
    """Poll tightly (a benchmark may; tests never do) until `ready`; raise on `failed`."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        status, asset = call("GET", f"{server.root}/api/asset/{asset_id}", key=key)
        if status != 200:
            raise RuntimeError(f"GET asset {asset_id} answered {status}: {asset}")
        phase = asset["status"]["phase"]
        if phase == "ready":
            return dict(asset)
        if phase == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"asset {asset_id} is {phase}: {asset['status']}")
        time.sleep(POLL_SECONDS)


def check_outputs(server: Server, key: str, asset: dict[str, Any]) -> None:
    """HLS, MP4 and thumbnails listed in playback info, and the master playlist served."""
    status, info = call("GET", f"{server.root}/api/playback/{asset['playbackId']}", key=key)
    kinds = {s.get("hrn") for s in (info or {}).get("meta", {}).get("source", [])}
    if status != 200 or not {"MP4", "HLS (TS)", "Thumbnails"} <= kinds:
        raise RuntimeError(f"playback info answered {status}, sources {sorted(map(str, kinds))}")
    with urllib.request.urlopen(asset["playbackUrl"], timeout=10) as resp:
        if resp.status != 200 or not resp.read().startswith(b"#EXTM3U"):
            raise RuntimeError(f"{asset['playbackUrl']} is not a playlist")


def outputs_written(data_dir: Path, sha256: str) -> float | None:
    """When the encoder wrote the master playlist (its last file) in the server's cache."""
    found = list((data_dir / "cache" / sha256).glob("outputs-*/index.m3u8"))
    return found[0].stat().st_mtime if found else None


# -- this process's own runs ---------------------------------------------------------------


def timed(function: Callable[..., Any], *args: Any) -> float:
    began = time.perf_counter()
    function(*args)
    return time.perf_counter() - began


def digest(path: Path) -> None:
    asyncio.run(blobs.digest(path))


def probe(path: Path) -> dict[str, Any]:
    result = asyncio.run(Prober(TOOLS.ffprobe).probe(path))
    if result.video_spec is None:
        raise RuntimeError(f"ffprobe refused {path}: {result.error}")
    return result.video_spec


def plan_for(path: Path, mode: str) -> renditions.OutputPlan:
    plan = renditions.plan_outputs(probe(path), mode)
    assert plan is not None
    return plan


def folders(dest: Path, plan: renditions.OutputPlan) -> None:
    for r in plan.renditions:
        (dest / r.name).mkdir(parents=True, exist_ok=True)
    (dest / "thumbnails").mkdir(parents=True, exist_ok=True)


def make_outputs(encoder: Encoder, source: Path, plan: renditions.OutputPlan, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    asyncio.run(encoder.make_outputs(source, plan, dest))


def run_ffmpeg(argv: list[str], cwd: Path | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, timeout=900)


def run_alone(argv: list[str], dest: Path, plan: renditions.OutputPlan) -> float:
    """One of Encoder.commands' runs by itself, in a fresh folder; wall seconds."""
    shutil.rmtree(dest, ignore_errors=True)
    folders(dest, plan)
    return timed(run_ffmpeg, argv, dest)


def bare_copy_hls(source: Path, dest: Path, segment: float) -> list[str]:
    return [
        TOOLS.ffmpeg or "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error",
        "-i", str(source), "-c", "copy", "-f", "hls", "-hls_time", f"{segment:g}",
        "-hls_playlist_type", "vod", "-hls_segment_filename", str(dest / "%d.ts"),
        str(dest / "index.m3u8"),
    ]  # fmt: skip


_TEE_HLS = re.compile(r"^\[f=hls:([^\]]*)\](.+)$")


def plain_hls(argv: list[str]) -> list[str]:
    """The encoder's command with every tee output (HLS only, once MP4s are off) turned
    into a plain `-f hls` output with the same options."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "tee" and i > 0 and argv[i - 1] == "-f":
            out.append("hls")
            continue
        match = _TEE_HLS.match(arg)
        if match is None:
            out.append(arg)
            continue
        if "|" in arg:
            raise ValueError(f"a tee with more than HLS in it: {arg}")
        for option in match.group(1).split(":"):
            name, value = option.split("=", 1)
            if name != "f":
                out += [f"-{name}", value]
        out.append(match.group(2))
    if "tee" in out:
        raise ValueError("a tee output left in the bare command")
    return out


# -- reporting ------------------------------------------------------------------------------


def line(label: str, values: list[float], unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1
    shown = ", ".join(f"{v * scale:.0f}" if unit == "ms" else f"{v:.2f}" for v in values)
    return f"  {label:<50} median {median(values) * scale:9.2f} {unit:<4} rounds: {shown}"


# -- the parts ------------------------------------------------------------------------------


def part_instant(rounds: int, tmp: Path, logs: Path) -> list[tuple[str, bool]]:
    print("\n== instant: 2 s 320x240 sample.mp4, fresh bytes each round, real clock ==")
    encoder = Encoder(TOOLS.ffmpeg or "ffmpeg")
    servers: dict[str, Server] = {}
    dirs = {mode: tmp / f"instant-{mode}" for mode in ("copy", "none")}
    ready: dict[str, list[float]] = {"copy": [], "none": []}
    written: list[float] = []
    hashing, probing, whole = [], [], []
    runs: dict[str, list[float]] = {}
    try:
        for mode, data_dir in dirs.items():
            servers[mode] = start_emulator(
                data_dir, logs, "--scenario", "instant", "--outputs", mode, pin=False
            )
        key = f"bench-{uuid.uuid4().hex[:8]}"
        upload(servers["copy"], key, variant(SAMPLE_MP4, tmp))  # warm-up: first ffmpeg run
        upload(servers["none"], key, variant(SAMPLE_MP4, tmp))
        for n in range(rounds):
            order = ("copy", "none") if n % 2 == 0 else ("none", "copy")
            for mode in order:
                source = variant(SAMPLE_MP4, tmp)
                done = upload(servers[mode], key, source)
                ready[mode].append(done.ready)
                if mode == "copy":
                    check_outputs(servers[mode], key, done.asset)
                    at = outputs_written(dirs[mode], sha256_of(source))
                    written.append((at - done.answered_wall) if at else float("nan"))
            # The same work in this process, one piece at a time, on this round's bytes.
            hashing.append(timed(digest, source))
            probing.append(timed(probe, source))
            plan = plan_for(source, "copy")
            for step, argv in encoder.commands(source, plan):
                runs.setdefault(step, []).append(run_alone(argv, tmp / "alone", plan))
            whole.append(timed(make_outputs, encoder, source, plan, tmp / "whole"))
            print(
                f"round {n + 1}: ready after the PUT's answer: copy {ready['copy'][-1] * 1000:.0f}"
                f" ms (outputs written at +{written[-1] * 1000:.0f} ms), none "
                f"{ready['none'][-1] * 1000:.0f} ms; here: probe {probing[-1] * 1000:.0f} ms,"
                f" make_outputs {whole[-1] * 1000:.0f} ms"
            )
    finally:
        for server in servers.values():
            server.stop()
    copy, none = median(ready["copy"]), median(ready["none"])
    print(line("copy: PUT answered -> ready (polled)", ready["copy"]))
    print(line("  of which outputs written (playlist mtime)", written))
    print(line("none (baseline): PUT answered -> ready", ready["none"]))
    print("  in this process, same bytes, one at a time:")
    print(line("  md5 + sha256", hashing))
    print(line("  Prober.probe (ffprobe)", probing))
    for step, values in runs.items():
        print(line(f"  alone: {step.removeprefix('Failed to ')}"[:50], values))
    print(line("  Encoder.make_outputs (runs at once + checks)", whole))
    share = median(probing) + median(whole)
    print(
        f"  shares of copy's ready time: probe {median(probing) / copy:.0%}, make_outputs "
        f"{median(whole) / copy:.0%}, the rest (hash, store, scheduler, polling) "
        f"{max(0.0, copy - share) / copy:.0%}; copy - none = {(copy - none) * 1000:.0f} ms"
    )
    ok = copy <= 0.5
    print(f"  target ready <= 500 ms: {copy * 1000:.0f} ms: {verdict(ok)}")
    return [("instant ready <= 0.5 s", ok)]


def part_encode(mode: str, source: Path, rounds: int, tmp: Path) -> list[tuple[str, bool]]:
    encoder = Encoder(TOOLS.ffmpeg or "ffmpeg", timeout=900)
    plan = plan_for(source, mode)
    if mode == "copy":
        target = 2.0
        label = "bare ffmpeg -c copy -f hls"

        def bare(dest: Path) -> float:
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            argv = bare_copy_hls(source, dest, plan.segment_seconds)
            return timed(run_ffmpeg, argv)
    else:
        target = 1.3
        label = "bare ffmpeg, same graph, plain HLS"
        plain = dataclasses.replace(plan, static_mp4=False, thumbnails=False)
        bare_argv = plain_hls(encoder.command(source, plain))

        def bare(dest: Path) -> float:
            return run_alone(bare_argv, dest, plain)

    rungs = ", ".join(f"{r.name} {r.width}x{r.height}" for r in plan.renditions)
    print(f"\n== {mode}: 60 s 1280x720 H.264/AAC; {rungs}; {rounds} round(s) ==")
    for step, run in encoder.commands(source, plan):
        print(f"  emulator run ({step.removeprefix('Failed to ')}): {' '.join(run)}")
    if mode != "copy":
        print(f"  bare run: {' '.join(bare_argv)}")
    ours: list[float] = []
    theirs: list[float] = []
    alone: dict[str, list[float]] = {}
    for n in range(rounds):
        first_ours = n % 2 == 1
        if first_ours:
            ours.append(timed(make_outputs, encoder, source, plan, tmp / mode))
        theirs.append(bare(tmp / f"{mode}-bare"))
        if not first_ours:
            ours.append(timed(make_outputs, encoder, source, plan, tmp / mode))
        runs = ""
        if mode == "copy":  # cheap enough to split: each of the encoder's runs by itself
            for step, run in encoder.commands(source, plan):
                name = step.removeprefix("Failed to ")
                alone.setdefault(name, []).append(run_alone(run, tmp / "alone", plan))
                runs += f", alone: {name} {alone[name][-1]:.2f} s"
        print(
            f"round {n + 1}: Encoder.make_outputs {ours[-1]:.2f} s, {label} {theirs[-1]:.2f} s,"
            f" ratio {ours[-1] / theirs[-1]:.2f}{runs}"
        )
    shutil.rmtree(tmp / "alone", ignore_errors=True)
    shutil.rmtree(tmp / mode, ignore_errors=True)
    shutil.rmtree(tmp / f"{mode}-bare", ignore_errors=True)
    ratio = median(ours) / median(theirs)
    print(line(f"{mode}: Encoder.make_outputs", ours, "s"))
    print(line(label, theirs, "s"))
    for name, values in alone.items():
        print(line(f"  alone: {name}"[:50], values, "s"))
    ok = ratio <= target
    print(f"  target <= {target:g}x: {ratio:.2f}x: {verdict(ok)}")
    return [(f"{mode} <= {target:g}x bare", ok)]


def part_repeat(long_source: Path, rounds: int, tmp: Path, logs: Path) -> list[tuple[str, bool]]:
    print("\n== repeat: the same bytes twice, instant scenario, real clock, one server ==")
    results: list[tuple[str, bool]] = []
    data_dir = tmp / "repeat"
    server = start_emulator(data_dir, logs, "--scenario", "instant", pin=False)
    names = ("sample.mp4", "60 s 720p")
    first: dict[str, list[float]] = {name: [] for name in names}  # PUT answered -> ready
    again: dict[str, list[float]] = {name: [] for name in names}
    first_total: dict[str, list[float]] = {name: [] for name in names}  # PUT sent -> ready
    again_total: dict[str, list[float]] = {name: [] for name in names}
    try:
        key = f"bench-{uuid.uuid4().hex[:8]}"
        upload(server, key, variant(SAMPLE_MP4, tmp))  # warm-up
        for n in range(rounds):
            for name, base in zip(names, (SAMPLE_MP4, long_source), strict=True):
                source = variant(base, tmp)
                one, two = upload(server, key, source), upload(server, key, source)
                check_outputs(server, key, two.asset)
                first[name].append(one.ready)
                again[name].append(two.ready)
                first_total[name].append(one.total)
                again_total[name].append(two.total)
                source.unlink()
                print(
                    f"round {n + 1} {name}: PUT answered -> ready: first {one.ready * 1000:.0f}"
                    f" ms, again {two.ready * 1000:.0f} ms ({two.ready / one.ready:.1%}); PUT "
                    f"sent -> ready: {one.total * 1000:.0f} ms, {two.total * 1000:.0f} ms "
                    f"({two.total / one.total:.1%})"
                )
    finally:
        server.stop()
    for name in names:
        print(line(f"{name}: first, PUT answered -> ready", first[name]))
        print(line(f"{name}: same bytes again", again[name]))
        print(line(f"{name}: first, PUT sent -> ready", first_total[name]))
        print(line(f"{name}: same bytes again", again_total[name]))
        ratio = median(again[name]) / median(first[name])
        with_upload = median(again_total[name]) / median(first_total[name])
        ok = ratio <= 0.2
        print(
            f"  target again <= 20% of first (from the PUT's answer): {ratio:.1%}: "
            f"{verdict(ok)} (with the upload itself in both: {with_upload:.1%})"
        )
        results.append((f"repeat {name} <= 20%", ok))
    return results


def part_memory(clip: Path, rounds: int, tmp: Path, logs: Path) -> list[tuple[str, bool]]:
    print("\n== memory: 10 distinct 10 s 720p assets at once, server RSS (not ffmpeg's) ==")
    growth: dict[str, list[float]] = {"copy": [], "none": []}
    since_start: dict[str, list[float]] = {"copy": [], "none": []}
    for n in range(rounds):
        for mode in ("copy", "none") if n % 2 == 0 else ("none", "copy"):
            data_dir = tmp / f"memory-{mode}-{n}"
            server = start_emulator(
                data_dir, logs, "--scenario", "instant", "--outputs", mode, pin=False
            )
            try:
                start_kib = proc_status_kib(server.pid, "VmRSS")
                key = f"bench-{uuid.uuid4().hex[:8]}"
                upload(server, key, variant(clip, tmp))  # warm-up: first-use allocations
                time.sleep(0.2)  # let the warm-up's tail settle before reading "idle"
                idle_kib = proc_status_kib(server.pid, "VmRSS")
                sources = [variant(clip, tmp) for _ in range(10)]
                sampler = RssSampler(server.pid)
                sampler.start()
                failures: list[BaseException] = []

                threads = [
                    threading.Thread(target=upload_into, args=(server, key, p, failures))
                    for p in sources
                ]
                began = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(READY_TIMEOUT)
                took = time.perf_counter() - began
                sampler.halt.set()
                sampler.join()
                peak = max(sampler.peak_kib, proc_status_kib(server.pid, "VmHWM"))
                if failures:
                    raise RuntimeError(f"{len(failures)} of 10 uploads failed: {failures[0]}")
                growth[mode].append((peak - idle_kib) / 1024)
                since_start[mode].append((peak - start_kib) / 1024)
                for path in sources:
                    path.unlink()
            finally:
                server.stop()
                shutil.rmtree(data_dir, ignore_errors=True)
            print(
                f"round {n + 1} {mode}: 10 ready in {took:.2f} s; RSS start {start_kib / 1024:.1f}"
                f" MiB, idle {idle_kib / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB: "
                f"+{growth[mode][-1]:.1f} MiB over idle"
            )
    print(line("copy: RSS growth over idle", growth["copy"], "MiB"))
    print(line("copy: RSS growth since start", since_start["copy"], "MiB"))
    print(line("none (baseline): RSS growth over idle", growth["none"], "MiB"))
    worst = max(growth["copy"])
    ok = worst <= 64
    print(f"  target <= 64 MiB over idle (worst round): {worst:.1f} MiB: {verdict(ok)}")
    return [("RSS <= 64 MiB over idle", ok)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated, of " + ", ".join(PARTS)
    )
    parser.add_argument("--rounds", type=int, default=3, help="copy, repeat, memory (3)")
    parser.add_argument("--instant-rounds", type=int, default=9, help="instant (9)")
    parser.add_argument("--transcode-rounds", type=int, default=1, help="transcode (1)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}: expected some of {PARTS}")
    rounds = max(1, min(args.rounds, 20))
    if TOOLS.ffmpeg is None:
        print("ffmpeg not found: install it (apt-get install ffmpeg)")
        return 1
    results: list[tuple[str, bool]] = []
    with scratch("bench-outputs-") as tmp:
        logs = tmp / "logs"
        logs.mkdir()
        long_source = tmp / "src-60s-720p.mp4"
        if "instant" in parts:
            results += part_instant(max(1, min(args.instant_rounds, 50)), tmp, logs)
        if "copy" in parts:
            results += part_encode("copy", generate(long_source, 60), rounds, tmp)
        if "transcode" in parts:
            transcode_rounds = max(1, min(args.transcode_rounds, 5))
            results += part_encode("transcode", generate(long_source, 60), transcode_rounds, tmp)
        if "repeat" in parts:
            results += part_repeat(generate(long_source, 60), rounds, tmp, logs)
        if "memory" in parts:
            results += part_memory(generate(tmp / "clip-10s-720p.mp4", 10), rounds, tmp, logs)
    print("\n== targets ==")
    for name, ok in results:
        print(f"  {name:<32} {verdict(ok)}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
