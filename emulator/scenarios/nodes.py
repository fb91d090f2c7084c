"""YAML nodes → typed values, each problem recorded at its line: text, whole numbers,
fractions, durations with a unit, glob patterns, mappings with known keys (and the
nearest key suggested for a typo).

Line numbers come from PyYAML's node API (yaml.compose) rather than yaml.safe_load, which
forgets them. What the values mean in a scenario is emulator/scenarios/reader.py's job.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emulator.scenarios.problems import Problem, ScenarioError

# Scenarios are a few levels deep; far deeper YAML (10,000 "[") would exhaust the stack
# of PyYAML's recursive composer and constructor.
MAX_YAML_DEPTH = 50


class _Refused(ComposerError):
    """YAML that is well formed but not read here: too deep, or with an alias."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (`*name`), whose expansion can grow exponentially
    (a billion laughs) and which no scenario needs, and nesting past MAX_YAML_DEPTH."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark  # a Mark of PyYAML's pure or C parser
        if isinstance(event, AliasEvent):
            raise _Refused(
                None,
                None,
                f"YAML aliases (*{event.anchor}) are not supported in scenarios: "
                "write the value out in full",
                mark,
            )
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(
                None,
                None,
                f"YAML nested too deeply: more than {MAX_YAML_DEPTH} levels",
                mark,
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$")
_BARE_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000}


def compose(text: str, source: str) -> Node | None:
    """The YAML (or JSON) node tree, which keeps the line of every value."""
    if text.lstrip().startswith(("{", "[")):
        # JSON may indent with tabs, which YAML refuses; JSON strings cannot hold raw tabs,
        # so turning them into spaces changes nothing else (and keeps line numbers).
        text = text.replace("\t", " ")
    try:
        return yaml.compose(text, Loader=_BoundedLoader)
    except _Refused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise ScenarioError([Problem(source, line, str(exc.problem))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(source, line, f"not valid YAML: {reason}")]) from None


def _duration(value: Any, where: str) -> tuple[int | None, str]:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return round(float(match.group(1)) * _UNIT_MS[match.group(2)]), ""
    if (isinstance(value, (int, float)) and not isinstance(value, bool)) or (
        isinstance(value, str) and _BARE_NUMBER.match(value)
    ):
        number = str(value).strip()
        return None, (
            f"{where}: {number} is a duration without a unit; write {number}ms or {number}s"
        )
    return None, f"{where}: {value!r} is not a duration with a unit (like 500ms, 2s or 1m)"


def _glob_problem(pattern: str) -> str | None:
    """Why fnmatch would not read `pattern` as meant: an unclosed [ set (it would match a
    literal "["), or nothing at all."""
    if not pattern:
        return "an empty pattern matches nothing"
    i = 0
    while i < len(pattern):
        if pattern[i] == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j += 1
            if j >= len(pattern):
                return f"the '[' at position {i + 1} is never closed with ']'"
            i = j
        i += 1
    return None


# What a node that could not be read stands for; no YAML value is this object.
INVALID = object()


class NodeReader:
    """Reads typed values out of YAML nodes, collecting a problem (at the node's line) for
    each one that is not what was asked for, instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def problem(self, node: Node, message: str) -> None:
        self.problems.append(Problem(self.source, node.start_mark.line + 1, message))

    def value(self, node: Node) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(node, f"cannot read this value: {getattr(exc, 'problem', exc)}")
            return INVALID

    def shown(self, node: Node) -> str:
        if isinstance(node, MappingNode):
            return "a mapping"
        if isinstance(node, SequenceNode):
            return "a list"
        value = self.value(node)
        if value is None:
            return "nothing (null)"
        if isinstance(value, bool):
            return f"{str(value).lower()} (a boolean)"
        if isinstance(value, (int, float)):
            return f"the number {value}"
        return f"the text {value!r}" if isinstance(value, str) else f"{value!r}"

    def wrong(self, node: Node, where: str, expected: str) -> None:
        self.problem(node, f"{where} must be {expected}, not {self.shown(node)}")

    # -- structure --------------------------------------------------------------------

    def mapping(
        self, node: Node, where: str, keys: Sequence[str], word: str = "key"
    ) -> dict[str, Node] | None:
        if not isinstance(node, MappingNode):
            self.wrong(node, where, "a mapping")
            return None
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = self.value(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{where}: keys must be text")
            elif key in out:
                self.problem(key_node, f"{where}: {key!r} is given twice")
            elif key not in keys:
                close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else f" ({', '.join(keys)})"
                self.problem(key_node, f"unknown {word} {key!r} in {where}{hint}")
            else:
                out[key] = value_node
        return out

    def text(self, node: Node, where: str) -> str | None:
        value = self.value(node) if isinstance(node, ScalarNode) else INVALID
        if isinstance(value, str):
            return value
        self.wrong(node, where, "text")
        return None

    def choice(self, node: Node, where: str, choices: tuple[str, ...]) -> str | None:
        value = self.text(node, where)
        if value is not None and value not in choices:
            self.problem(node, f"{where} must be one of {', '.join(choices)}, got {value!r}")
            return None
        return value

    def whole(self, node: Node, where: str, minimum: int | None = None) -> int | None:
        value = self.value(node) if isinstance(node, ScalarNode) else INVALID
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong(node, where, "a whole number")
            return None
        if minimum is not None and value < minimum:
            self.problem(node, f"{where} must be at least {minimum}, got {value}")
            return None
        return value

    def fraction(self, node: Node, where: str) -> float | None:
        value = self.value(node) if isinstance(node, ScalarNode) else INVALID
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.wrong(node, where, "a number between 0 and 1")
            return None
        if not 0 <= value <= 1:
            self.problem(node, f"{where} must be between 0 and 1, got {value}")
            return None
        return float(value)

    def duration(self, node: Node, where: str) -> int | None:
        if not isinstance(node, ScalarNode):
            self.wrong(node, where, "a duration with a unit (like 500ms or 2s)")
            return None
        ms, problem = _duration(self.value(node), where)
        if ms is None:
            self.problem(node, problem)
        return ms

    def glob(self, node: Node, where: str, *, path: bool = False) -> str | None:
        pattern = self.text(node, where)
        if pattern is None:
            return None
        problem = _glob_problem(pattern)
        if problem is None and path and not pattern.startswith(("/", "*", "?", "[")):
            problem = "a path pattern starts with / (like /api/asset/*)"
        if problem is not None:
            self.problem(node, f"{where}: bad glob {pattern!r}: {problem}")
            return None
        return pattern

    def one_or_many(self, node: Node) -> list[Node]:
        return list(node.value) if isinstance(node, SequenceNode) else [node]
