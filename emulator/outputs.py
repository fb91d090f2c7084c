"""Playable outputs on disk: each asset's HLS, static MP4s and thumbnails, and the
content-addressed cache that makes a second upload of the same bytes nearly free.

An asset's outputs live beside its source file, in `media/<asset id>/outputs/`, so that
deleting the asset or resetting its tenant (which remove that folder) removes them too.
They are made in a temporary folder and renamed into place: a reader sees all of them or
none. What ffprobe and ffmpeg made of a source is kept in `cache/<sha256>/`, by the
source's SHA-256 (and, for outputs, the plan that shaped them); test suites upload the
same fixture hundreds of times, and each later upload links the cached files (hard
links: no bytes copied) instead of running ffprobe and ffmpeg again. The cache is shared
by every tenant, which reveals nothing: only somebody who has the bytes finds them in it.
Its least recently used entries go once it holds more than `cache_bytes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.keyed import KeyedLocks
from emulator.media import EncodeFailed, Encoder, Prober
from emulator.models import Doc, ProbeResult
from emulator.renditions import OutputPlan

OUTPUTS_DIR = "outputs"
MANIFEST = "files.json"  # the Studio-shaped `files` entries, written last
PROBE = "probe.json"
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class OutputFiles:
    def __init__(
        self, root: Path, *, prober: Prober, encoder: Encoder | None, cache_bytes: int
    ) -> None:
        self.cache_dir = root / "cache"
        self._prober = prober
        self._encoder = encoder
        self._cache_bytes = cache_bytes
        self._making = KeyedLocks()  # one ffmpeg run per cache entry at a time

    def prepare(self) -> None:
        """Make the cache folder and drop what a killed process left half-made."""
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.cache_dir.glob("*/*.tmp"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in (self.cache_dir.parent / "media").glob(f"*/{OUTPUTS_DIR}.*"):
            shutil.rmtree(leftover, ignore_errors=True)  # .tmp and .old swaps

    # -- making ---------------------------------------------------------------------------

    async def probe(self, source: Path, sha256: str) -> ProbeResult:
        """ffprobe's answer for these bytes: from the cache, or by running it (and kept
        when the file was media: a failure is cheap to find again and rarely repeated)."""
        cached = self._entry(sha256) / PROBE
        try:
            found = json.loads(cached.read_text())
            os.utime(cached)  # recently used: kept longest
            return ProbeResult(video_spec=found["videoSpec"], media_type=found["type"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        result = await self._prober.probe(source)
        if result.ok:
            data = {"videoSpec": result.video_spec, "type": result.media_type}
            await _in_thread(_write_atomically, cached, json.dumps(data))
        return result

    async def make(
        self,
        source: Path,
        sha256: str,
        plan: OutputPlan,
        on_progress: Callable[[float], None] | None = None,
    ) -> list[Doc]:
        """Put the asset's outputs in place beside `source`; returns their `files`
        entries. Raises EncodeFailed (nothing left behind) when ffmpeg fails."""
        if self._encoder is None:
            raise EncodeFailed("Failed to transcode video: ffmpeg is not installed")
        made = self._entry(sha256) / f"outputs-{_digest(plan.key())}"
        async with self._making.hold(str(made)):
            encoded = not (made / MANIFEST).is_file()
            if encoded:
                await self._encode(source, plan, made, on_progress)
        with contextlib.suppress(OSError):  # recently used: kept longest
            os.utime(made.parent / PROBE)
        files: list[Doc] = json.loads((made / MANIFEST).read_text())["files"]
        await _in_thread(_link_into_place, made, source.parent / OUTPUTS_DIR)
        if on_progress is not None:
            on_progress(1.0)
        if encoded:  # only a new entry can take the cache past its cap
            await _in_thread(self._evict)
        return files

    async def _encode(
        self,
        source: Path,
        plan: OutputPlan,
        made: Path,
        on_progress: Callable[[float], None] | None,
    ) -> None:
        assert self._encoder is not None
        temporary = made.parent / f"{uuid.uuid4().hex}.tmp"
        temporary.mkdir(parents=True)
        try:
            files = await self._encoder.make_outputs(source, plan, temporary, on_progress)
            size = sum(f.stat().st_size for f in temporary.rglob("*") if f.is_file())
            manifest = json.dumps({"files": files, "bytes": size})
            (temporary / MANIFEST).write_text(manifest)
            shutil.rmtree(made, ignore_errors=True)  # a half-evicted leftover
            os.rename(temporary, made)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise

    # -- reading ---------------------------------------------------------------------------

    @staticmethod
    def files(source: Path) -> list[Doc] | None:
        """The `files` entries of the asset whose source is `source`, if it has outputs."""
        try:
            found: list[Doc] = json.loads((source.parent / OUTPUTS_DIR / MANIFEST).read_text())[
                "files"
            ]
            return found
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def resolve(source: Path, relative: str) -> Path | None:
        """The output file at `relative` (a URL path) of the asset whose source is
        `source`; None for anything outside its outputs folder, hidden, or missing."""
        parts = relative.split("/")
        if not parts or not all(_SAFE_PART.match(part) for part in parts):
            return None
        if parts == [MANIFEST]:
            return None  # ours, not Studio's
        folder = source.parent / OUTPUTS_DIR
        path = folder.joinpath(*parts)
        try:
            real = path.resolve(strict=True)
            if not real.is_relative_to(folder.resolve(strict=True)) or not real.is_file():
                return None
        except (OSError, RuntimeError):
            return None
        return real

    # -- the cache's size ------------------------------------------------------------------

    def _entry(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.cache_dir / sha256

    def _evict(self) -> None:
        """Drop the least recently used entries while the cache holds more than its cap
        (assets keep their own links to the files, so nothing they serve goes)."""
        entries: list[tuple[float, int, Path]] = []
        for entry in self.cache_dir.iterdir():
            size = 0
            for manifest in entry.glob(f"outputs-*/{MANIFEST}"):
                try:
                    size += int(json.loads(manifest.read_text()).get("bytes", 0))
                except (OSError, ValueError, TypeError, AttributeError):
                    continue
            try:
                used = (entry / PROBE).stat().st_mtime
            except OSError:
                used = 0.0
            entries.append((used, size, entry))
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries, key=lambda e: e[0]):
            if total <= self._cache_bytes:
                break
            shutil.rmtree(entry, ignore_errors=True)
            total -= size


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{uuid.uuid4().hex}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _link_into_place(made: Path, target: Path) -> None:
    """Hard-link the cached tree `made` to `target`, through a temporary folder renamed
    into place (copies where links are refused, e.g. another file system)."""
    temporary = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    # mkdir, not makedirs: when the asset was deleted meanwhile (its folder is gone), this
    # fails rather than bringing the folder back.
    os.mkdir(temporary)
    try:
        shutil.copytree(made, temporary, copy_function=_link_or_copy, dirs_exist_ok=True)
        old = target.with_name(f"{target.name}.{uuid.uuid4().hex}.old")
        if target.exists():  # outputs made again (a restart mid-output): swap whole
            os.rename(target, old)
        os.rename(temporary, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _link_or_copy(source: str, destination: str) -> Any:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
    return destination


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
