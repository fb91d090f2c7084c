"""Scenarios: YAML files that set the processing timeline (and, later, faults).

A scenario is named by a shipped file (`scenarios/<name>.yaml`) or given as a path.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from emulator.errors import ConfigError
from emulator.timeline import DEFAULT_PROFILE, TimelineProfile

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000}


def shipped_dir() -> Path:
    """Where the shipped scenarios are: the source tree, or the installed data files."""
    candidates = [
        Path(__file__).resolve().parent.parent / "scenarios",
        Path(sys.prefix) / "share" / "livepeer-emulator" / "scenarios",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.yaml"))


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    timeline: TimelineProfile = DEFAULT_PROFILE
    source: str = "<default>"
    extra: dict[str, Any] = field(default_factory=dict)


DEFAULT_SCENARIO = Scenario(name="default")


def parse_duration_ms(value: Any, where: str) -> int:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return round(float(match.group(1)) * _UNIT_MS[match.group(2)])
    raise ConfigError(f"{where}: {value!r} is not a duration with a unit (like 500ms or 2s)")


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a YAML file by path."""
    path = Path(name_or_path)
    if not path.is_file():
        path = shipped_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        names = ", ".join(shipped_names()) or "none"
        raise ConfigError(
            f"scenario {name_or_path!r} is neither a file nor a shipped scenario ({names})"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {exc}") from None
    return from_data(data or {}, source=str(path), default_name=path.stem)


def from_data(data: Any, *, source: str, default_name: str) -> Scenario:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a scenario is a mapping of keys to values")
    timeline = DEFAULT_PROFILE
    raw = data.get("timeline") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: timeline must be a mapping")
    for key in raw:
        if key not in ("queue", "processing", "progress_steps"):
            raise ConfigError(f"{source}: unknown timeline key {key!r}")
    timeline = TimelineProfile(
        queue_ms=parse_duration_ms(raw["queue"], f"{source}: timeline.queue")
        if "queue" in raw
        else DEFAULT_PROFILE.queue_ms,
        processing_ms=parse_duration_ms(raw["processing"], f"{source}: timeline.processing")
        if "processing" in raw
        else DEFAULT_PROFILE.processing_ms,
        progress_steps=int(raw.get("progress_steps", DEFAULT_PROFILE.progress_steps)),
    )
    return Scenario(
        name=str(data.get("name") or default_name),
        description=str(data.get("description") or ""),
        timeline=timeline,
        source=source,
    )
