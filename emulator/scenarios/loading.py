"""Where a scenario comes from: a shipped name (`scenarios/<name>.yaml`), a file path,
inline text (a value with a newline, or starting with `{`), or a PUT /_emulator/scenario
body; and the listing and file checks behind `livepeer-emulator scenarios`.

A request body may name a file only among the shipped scenarios and the configured
scenarios directory (load_request's `scenarios_dir`): the control plane can be reached by
anyone the server answers, and must not become a way to read the server's files. Every
file is read bounded (MAX_FILE_BYTES, checked with stat before opening).
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from emulator.errors import ConfigError
from emulator.scenarios.model import Scenario
from emulator.scenarios.problems import Problem, ScenarioError

if TYPE_CHECKING:
    from yaml.nodes import Node

# PyYAML and the modules reading its nodes (nodes.py, reader.py) are imported inside the
# functions that parse: the default scenario needs neither, and they cost start time.

MAX_FILE_BYTES = 1024 * 1024  # shipped scenarios are a few kB; YAML parsing is not free
MAX_MESSAGE_CHARS = 240  # of one problem in a file loaded for the control plane


class FileRefused(ConfigError):
    """A file the control plane may not load: outside the shipped and configured dirs."""


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
    text = read_bounded(path, str(path))
    return parse(text, source=str(path), default_name=path.stem)


def read_bounded(path: Path, source: str, *, follow_symlinks: bool = True) -> str:
    """A scenario file's text: a regular file of at most MAX_FILE_BYTES, its size checked
    before anything is read, and never more than that read (it may grow meanwhile)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the loop
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        size = os.stat(path, follow_symlinks=follow_symlinks).st_size
        if size > MAX_FILE_BYTES:
            raise ScenarioError([Problem(source, 0, _too_big(size))])
        fd = os.open(path, flags)
    except OSError as exc:
        raise ScenarioError([Problem(source, 0, f"cannot read: {exc.strerror}")]) from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError([Problem(source, 0, "not a regular file")])
        if info.st_size > MAX_FILE_BYTES:
            raise ScenarioError([Problem(source, 0, _too_big(info.st_size))])
        raw = file.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError([Problem(source, 0, _too_big(len(raw)))])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError([Problem(source, 0, "not UTF-8 text")]) from None


def _too_big(size: int) -> str:
    return f"{size} bytes is more than a scenario file may be ({MAX_FILE_BYTES} bytes); not read"


def load_shipped(name: str, *, source: str = "", line: int = 0) -> Scenario:
    path = shipped_dir() / f"{name}.yaml"
    if "/" in name or not path.is_file():
        import difflib  # here: only this error needs it, and the server's start does not

        names = shipped_names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (shipped: {', '.join(names)})"
        message = f"scenario {name!r} is neither a file nor a shipped scenario{hint}"
        if source:
            raise ScenarioError([Problem(source, line, message)])
        raise ConfigError(message)
    return load_file(path)


def load_request(
    text: str, source: str = "<request body>", scenarios_dir: Path | None = None
) -> Scenario:
    """A PUT /_emulator/scenario body: `{"name": SHIPPED}`, `{"path": FILE}` (a file among
    the shipped ones or in `scenarios_dir`), a bare shipped name, or a whole scenario, as
    YAML or JSON."""
    from yaml.nodes import MappingNode, ScalarNode

    from emulator.scenarios.nodes import compose
    from emulator.scenarios.reader import ScenarioReader

    node = compose(text, source)
    if isinstance(node, ScalarNode) and node.tag.endswith(":str") and node.value:
        return load_shipped(node.value, source=source, line=node.start_mark.line + 1)
    if isinstance(node, MappingNode) and len(node.value) == 1:
        key, value = node.value[0]
        if key.value in ("name", "path") and isinstance(value, ScalarNode) and value.value:
            line = value.start_mark.line + 1
            if key.value == "path":
                return load_allowed_file(value.value, scenarios_dir, source=source, line=line)
            return load_shipped(value.value, source=source, line=line)
    return ScenarioReader(source).scenario(node, "inline")


def load_allowed_file(
    value: str, scenarios_dir: Path | None, *, source: str = "", line: int = 0
) -> Scenario:
    """A file the control plane was asked to load, if it lies (symlinks and `..`
    resolved) in the shipped scenarios or `scenarios_dir`; a relative path is taken in
    `scenarios_dir` (or the shipped dir without one).

    Raises FileRefused for anything outside, before looking at it. Problems in a file that
    is not a YAML mapping are one message naming the file: its content is not quoted.
    """
    roots = [shipped_dir(), *([scenarios_dir] if scenarios_dir is not None else [])]
    wanted = Path(value)
    if not wanted.is_absolute():
        wanted = (scenarios_dir or shipped_dir()) / wanted
    try:
        resolved = wanted.resolve()
        inside = any(resolved.is_relative_to(root.resolve()) for root in roots)
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        inside = False
    if not inside:
        where = (
            "the shipped scenarios and --scenarios-dir"
            if scenarios_dir is not None
            else "the shipped scenarios (set --scenarios-dir to allow a directory of yours)"
        )
        raise FileRefused(
            f"scenario file {value!r} refused: files are loaded only from {where}; "
            "or send the scenario itself as the body"
        )
    if not resolved.is_file():
        raise ScenarioError([Problem(source, line, f"no such scenario file: {value}")])
    # Resolved already: opening without following a symlink keeps it what was checked.
    text = read_bounded(resolved, value, follow_symlinks=False)
    return _parse_quietly(text, value, resolved.stem)


def _parse_quietly(text: str, source: str, default_name: str) -> Scenario:
    """Parse a file that may not be a scenario at all without echoing what it holds:
    anything but a YAML mapping gets one message naming the file, and a mapping's
    problems are each cut to a short line."""
    from yaml.nodes import MappingNode

    from emulator.scenarios.nodes import compose
    from emulator.scenarios.reader import ScenarioReader

    generic = ScenarioError([Problem(source, 0, "not a scenario file (a YAML mapping)")])
    try:
        node: Node | None = compose(text, source)
    except (ScenarioError, RecursionError):
        raise generic from None
    if not isinstance(node, MappingNode):
        raise generic
    try:
        return ScenarioReader(source).scenario(node, default_name)
    except ScenarioError as exc:
        raise ScenarioError([_short(p) for p in exc.problems]) from None
    except RecursionError:
        raise generic from None


def _short(problem: Problem) -> Problem:
    message = problem.message.splitlines()[0] if problem.message else ""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return Problem(problem.source, problem.line, message)


def parse(text: str, *, source: str, default_name: str) -> Scenario:
    from emulator.scenarios.nodes import compose
    from emulator.scenarios.reader import ScenarioReader

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
