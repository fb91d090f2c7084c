"""Where a scenario comes from: a shipped name (`scenarios/<name>.yaml`), a file path,
inline text (a value with a newline, or starting with `{`), or a PUT /_emulator/scenario
body; and the listing and file checks behind `livepeer-emulator scenarios`.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path

from yaml.nodes import MappingNode, ScalarNode

from emulator.errors import ConfigError
from emulator.scenarios.model import Scenario
from emulator.scenarios.nodes import compose
from emulator.scenarios.problems import Problem, ScenarioError
from emulator.scenarios.reader import ScenarioReader


def shipped_dir() -> Path:
    """Where the shipped scenarios are: the source tree, or the installed data files."""
    candidates = [
        Path(__file__).resolve().parents[2] / "scenarios",  # emulator/scenarios/ → the root
        Path(sys.prefix) / "share" / "livepeer-emulator" / "scenarios",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def shipped_names() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.yaml"))


def is_inline(value: str) -> bool:
    """A scenario written out in a setting, rather than named or given as a path."""
    return "\n" in value or value.lstrip().startswith("{")


def load(value: str, *, inline_source: str = "<inline scenario>") -> Scenario:
    """A shipped scenario by name, a YAML file by path, or inline YAML/JSON text."""
    if is_inline(value):
        return parse(value, source=inline_source, default_name="inline")
    path = Path(value)
    if path.is_file():
        return load_file(path)
    return load_shipped(value)


def load_file(path: Path) -> Scenario:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(str(path), 0, f"cannot read: {exc}")]) from None
    return parse(text, source=str(path), default_name=path.stem)


def load_shipped(name: str, *, source: str = "", line: int = 0) -> Scenario:
    path = shipped_dir() / f"{name}.yaml"
    if "/" in name or not path.is_file():
        names = shipped_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (shipped: {', '.join(names)})"
        message = f"scenario {name!r} is neither a file nor a shipped scenario{hint}"
        if source:
            raise ScenarioError([Problem(source, line, message)])
        raise ConfigError(message)
    return load_file(path)


def load_request(text: str, source: str = "<request body>") -> Scenario:
    """A PUT /_emulator/scenario body: `{"name": SHIPPED}`, `{"path": FILE}`, a bare
    shipped name, or a whole scenario, as YAML or JSON."""
    node = compose(text, source)
    if isinstance(node, ScalarNode) and node.tag.endswith(":str") and node.value:
        return load_shipped(node.value, source=source, line=node.start_mark.line + 1)
    if isinstance(node, MappingNode) and len(node.value) == 1:
        key, value = node.value[0]
        if key.value in ("name", "path") and isinstance(value, ScalarNode) and value.value:
            line = value.start_mark.line + 1
            if key.value == "path":
                if not Path(value.value).is_file():
                    raise ScenarioError([Problem(source, line, f"no such file: {value.value}")])
                return load_file(Path(value.value))
            return load_shipped(value.value, source=source, line=line)
    return ScenarioReader(source).scenario(node, "inline")


def parse(text: str, *, source: str, default_name: str) -> Scenario:
    return ScenarioReader(source).scenario(compose(text, source), default_name)


def validate_files(paths: Sequence[str]) -> tuple[list[str], bool]:
    """What `livepeer-emulator scenarios validate` prints, and whether all files are good."""
    lines: list[str] = []
    ok = True
    for name in paths:
        path = Path(name)
        if not path.is_file():
            lines.append(f"{name}:0: no such file")
            ok = False
            continue
        try:
            scenario = load_file(path)
        except ScenarioError as exc:
            lines.extend(exc.messages)
            ok = False
        else:
            lines.append(f"{name}: ok ({scenario.name}, {len(scenario.faults)} fault rule(s))")
    return lines, ok


def listing() -> list[tuple[str, str]]:
    """(name, description) of every shipped scenario."""
    out = []
    for name in shipped_names():
        try:
            out.append((name, load_file(shipped_dir() / f"{name}.yaml").description))
        except ScenarioError as exc:
            out.append((name, f"INVALID: {exc.messages[0]}"))
    return out
