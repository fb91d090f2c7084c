"""Scenarios: the YAML (or JSON) format for timing profiles and fault rules, loaded and
validated in one place. The format is documented in scenarios/README.md.

Every problem is reported as `SOURCE:LINE: message`, with line numbers taken from PyYAML's
node API (yaml.compose), so a typo is caught before the server starts or a PUT is taken.
A scenario is named by a shipped file (`scenarios/<name>.yaml`), given as a path, or
written inline (a value with a newline, or starting with `{`).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emulator.errors import ConfigError
from emulator.events import FAULT_ACTIONS, WebhookFault
from emulator.timeline import (
    DEFAULT_FAULT_ERROR,
    DEFAULT_PROFILE,
    ProcessingFault,
    TimelineProfile,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$")
_BARE_NUMBER = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000}
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

TOP_KEYS = ("name", "description", "seed", "timeline", "faults")
# Timeline keys: the two phases a task spends time in, then how the time is reported.
TIMELINE_KEYS = (
    "queue",
    "processing",
    "progress_steps",
    "processing_per_media_second",
    "retry_delay",
)
RULE_KEYS = ("match", "respond", "delay", "drop_connection", "processing", "import", "webhook")
MATCH_KEYS = (
    "method",
    "path",
    "tenant",
    "asset_name",
    "source_url",
    "event",
    "webhook_url",
    "nth",
    "times",
    "probability",
)
HTTP_ONLY_KEYS = ("method", "path")
ASSET_ONLY_KEYS = ("asset_name", "source_url")
WEBHOOK_ONLY_KEYS = ("event", "webhook_url")  # webhook delivery faults (emulator/delivery.py)
# Where each match key applies, for telling a user which rules may use it.
_KEY_KINDS = {
    **dict.fromkeys(HTTP_ONLY_KEYS, ("http", "HTTP")),
    **dict.fromkeys(ASSET_ONLY_KEYS, ("processing import", "processing and import")),
    **dict.fromkeys(WEBHOOK_ONLY_KEYS, ("webhook", "webhook")),
}
HTTP_EFFECTS = ("respond", "delay", "drop_connection")


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


# -- the model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """Which requests (or assets) a rule applies to; empty fields match everything."""

    methods: tuple[str, ...] = ()
    path: str | None = None
    tenants: tuple[str, ...] = ()
    asset_name: str | None = None
    source_url: str | None = None
    event: str | None = None  # webhook event name glob
    webhook_url: str | None = None
    nth: frozenset[int] = frozenset()  # 1-based counts of this rule's matches
    times: int | None = None  # fire at most this often
    probability: float | None = None  # seeded draw per match

    def selects(
        self,
        tenant: str | None,
        *,
        method: str | None = None,
        path: str | None = None,
        asset_name: str | None = None,
        source_url: str | None = None,
        event: str | None = None,
        webhook_url: str | None = None,
    ) -> bool:
        """Whether the request or asset fits; nth, times and probability are the caller's."""
        if self.methods and method not in self.methods:
            return False
        if self.tenants and tenant not in self.tenants:
            return False
        # Studio tolerates a trailing slash, so the pattern matches with or without one.
        if self.path is not None and not (
            path is not None
            and (_glob(path, self.path) or _glob(path.rstrip("/") or "/", self.path))
        ):
            return False
        if self.asset_name is not None and not _glob(asset_name, self.asset_name):
            return False
        if self.event is not None and not _glob(event, self.event):
            return False
        if self.webhook_url is not None and not _glob(webhook_url, self.webhook_url):
            return False
        return self.source_url is None or _glob(source_url, self.source_url)


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


@dataclass(frozen=True)
class Respond:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None  # None: Studio's {"errors": [reason]}


@dataclass(frozen=True)
class Rule:
    """One fault rule: a match and its effects. Its kind says where it is applied."""

    index: int
    line: int
    match: Match = Match()
    respond: Respond | None = None
    delay_ms: int = 0
    drop_after_bytes: int | None = None  # 0: drop at once
    drop: bool = False
    processing: ProcessingFault | None = None
    import_error: str | None = None
    webhook: WebhookFault | None = None

    @property
    def kind(self) -> str:
        """ "http" (the fault middleware), "processing" (the timeline), "import" or
        "webhook" (deliveries)."""
        if self.webhook is not None:
            return "webhook"
        if self.processing is not None:
            return "processing"
        if self.import_error is not None:
            return "import"
        return "http"

    @property
    def answers(self) -> bool:
        """An HTTP rule that ends the request (later rules are not checked)."""
        return self.respond is not None or self.drop

    def describe(self) -> str:
        effects: list[str] = []
        if self.delay_ms:
            effects.append(f"delay {self.delay_ms}ms")
        if self.respond is not None:
            effects.append(f"respond {self.respond.status}")
        if self.drop:
            after = self.drop_after_bytes
            effects.append(f"drop connection after {after} bytes" if after else "drop connection")
        if self.processing is not None:
            effects.append("processing fault")
        if self.import_error is not None:
            effects.append("import fault")
        if self.webhook is not None:
            effects.append(f"webhook {self.webhook.action}")
        return f"faults[{self.index}] (line {self.line}): {', '.join(effects)}"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 0
    timeline: TimelineProfile = DEFAULT_PROFILE
    faults: tuple[Rule, ...] = ()
    source: str = "<default>"
    definition: dict[str, Any] = field(default_factory=dict)  # as written, for GET

    def rules(self, kind: str) -> list[Rule]:
        return [rule for rule in self.faults if rule.kind == kind]


DEFAULT_SCENARIO = Scenario(name="default")


@dataclass(frozen=True)
class Problem:
    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class ScenarioError(ConfigError):
    """A scenario that cannot be used, with every problem found in it."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)  # stable: same line keeps order
        lines = self.messages
        if len(lines) > 1:
            lines.insert(0, f"{len(lines)} problems in the scenario:")
        super().__init__("\n".join(lines))

    @property
    def messages(self) -> list[str]:
        return [str(p) for p in self.problems]


# -- loading ----------------------------------------------------------------------------


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
    node = _compose(text, source)
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
    return _Reader(source).scenario(node, "inline")


def parse(text: str, *, source: str, default_name: str) -> Scenario:
    return _Reader(source).scenario(_compose(text, source), default_name)


def _compose(text: str, source: str) -> Node | None:
    if text.lstrip().startswith(("{", "[")):
        # JSON may indent with tabs, which YAML refuses; JSON strings cannot hold raw tabs,
        # so turning them into spaces changes nothing else (and keeps line numbers).
        text = text.replace("\t", " ")
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([Problem(source, line, f"not valid YAML: {reason}")]) from None


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


# -- validation -------------------------------------------------------------------------


def parse_duration_ms(value: Any, where: str) -> int:
    """A duration with a unit (500ms, 2s, 1.5m) in milliseconds; ConfigError otherwise."""
    ms, problem = _duration(value, where)
    if ms is None:
        raise ConfigError(problem)
    return ms


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


_INVALID = object()


class _Reader:
    """Walks the composed YAML nodes, building a Scenario and collecting every problem."""

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
            return _INVALID

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
        value = self.value(node) if isinstance(node, ScalarNode) else _INVALID
        if isinstance(value, str):
            return value
        self.wrong(node, where, "text")
        return None

    def whole(self, node: Node, where: str, minimum: int | None = None) -> int | None:
        value = self.value(node) if isinstance(node, ScalarNode) else _INVALID
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong(node, where, "a whole number")
            return None
        if minimum is not None and value < minimum:
            self.problem(node, f"{where} must be at least {minimum}, got {value}")
            return None
        return value

    def fraction(self, node: Node, where: str) -> float | None:
        value = self.value(node) if isinstance(node, ScalarNode) else _INVALID
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

    # -- sections ---------------------------------------------------------------------

    def scenario(self, node: Node | None, default_name: str) -> Scenario:
        if node is None:
            self.problems.append(
                Problem(self.source, 1, "empty scenario: expected a mapping (name, timeline, …)")
            )
            raise ScenarioError(self.problems)
        keys = self.mapping(node, "the scenario", TOP_KEYS)
        if keys is None:
            raise ScenarioError(self.problems)
        name = self.text(keys["name"], "name") if "name" in keys else None
        description = self.text(keys["description"], "description") if "description" in keys else ""
        seed = self.whole(keys["seed"], "seed") if "seed" in keys else 0
        profile = self.timeline(keys["timeline"]) if "timeline" in keys else DEFAULT_PROFILE
        rules: list[Rule] = []
        if "faults" in keys:
            faults = keys["faults"]
            if not isinstance(faults, SequenceNode):
                self.wrong(faults, "faults", "a list of rules")
            else:
                for index, rule_node in enumerate(faults.value):
                    rule = self.rule(rule_node, index)
                    if rule is not None:
                        rules.append(rule)
        if self.problems:
            raise ScenarioError(self.problems)
        definition = self.value(node)
        return Scenario(
            name=name or default_name,
            description=description or "",
            seed=seed or 0,
            timeline=profile,
            faults=tuple(rules),
            source=self.source,
            definition=definition if isinstance(definition, dict) else {},
        )

    def timeline(self, node: Node) -> TimelineProfile:
        keys = self.mapping(node, "timeline", TIMELINE_KEYS, word="phase")
        if not keys:
            return DEFAULT_PROFILE
        changes: dict[str, int] = {}
        durations = {
            "queue": "queue_ms",
            "processing": "processing_ms",
            "processing_per_media_second": "per_media_second_ms",
            "retry_delay": "retry_delay_ms",
        }
        for key, attr in durations.items():
            if key in keys:
                ms = self.duration(keys[key], f"timeline.{key}")
                if ms is not None:
                    changes[attr] = ms
        if "progress_steps" in keys:
            steps = self.whole(keys["progress_steps"], "timeline.progress_steps", minimum=1)
            if steps is not None:
                changes["progress_steps"] = steps
        return dataclasses.replace(DEFAULT_PROFILE, **changes)

    def rule(self, node: Node, index: int) -> Rule | None:
        where = f"faults[{index}]"
        keys = self.mapping(node, where, RULE_KEYS)
        if keys is None:
            return None
        before = len(self.problems)
        effects = [k for k in RULE_KEYS[1:] if k in keys]
        if not effects:
            self.problem(node, f"{where} has no effect: add one of {', '.join(RULE_KEYS[1:])}")
            if "match" in keys:
                self.match(keys["match"], f"{where}.match", kind=None)
            return None
        kinds = {"http" if e in HTTP_EFFECTS else e for e in effects}
        if len(kinds) > 1:
            self.problem(
                node,
                f"{where} mixes {' and '.join(effects)}: HTTP effects (respond, delay, "
                "drop_connection), processing, import and webhook go in separate rules",
            )
            return None
        kind = kinds.pop()
        match = self.match(keys["match"], f"{where}.match", kind) if "match" in keys else Match()
        rule = Rule(index=index, line=node.start_mark.line + 1, match=match or Match())
        if "respond" in keys:
            rule = dataclasses.replace(rule, respond=self.respond(keys["respond"], where))
        if "delay" in keys:
            rule = dataclasses.replace(
                rule, delay_ms=self.duration(keys["delay"], f"{where}.delay") or 0
            )
        if "drop_connection" in keys:
            if "respond" in keys:
                self.problem(
                    keys["drop_connection"],
                    f"{where}: drop_connection and respond exclude each other",
                )
            after = self.drop(keys["drop_connection"], f"{where}.drop_connection")
            rule = dataclasses.replace(rule, drop=after is not None, drop_after_bytes=after)
        if "processing" in keys:
            rule = dataclasses.replace(
                rule, processing=self.processing(keys["processing"], f"{where}.processing")
            )
        if "import" in keys:
            fields = self.mapping(keys["import"], f"{where}.import", ("error",))
            if fields is not None and "error" not in fields:
                self.problem(keys["import"], f"{where}.import needs an error message")
            error = (
                self.text(fields["error"], f"{where}.import.error")
                if fields and "error" in fields
                else None
            )
            rule = dataclasses.replace(rule, import_error=error or "")
        if "webhook" in keys:
            fault = self.webhook(keys["webhook"], f"{where}.webhook")
            rule = dataclasses.replace(rule, webhook=fault)
        return rule if len(self.problems) == before else None

    def match(self, node: Node, where: str, kind: str | None) -> Match | None:
        """The rule's match; `kind` (None: unknown) says which keys apply."""
        keys = self.mapping(node, where, MATCH_KEYS)
        if keys is None:
            return None
        for key, (kinds, applies) in _KEY_KINDS.items():
            if kind is not None and key in keys and kind not in kinds.split():
                self.problem(keys[key], f"{where}.{key} only applies to {applies} faults")
        match = Match()
        if "method" in keys:
            methods = []
            for item in self.one_or_many(keys["method"]):
                method = self.text(item, f"{where}.method")
                if method is None:
                    continue
                if method.upper() not in HTTP_METHODS:
                    close = difflib.get_close_matches(method.upper(), HTTP_METHODS, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    self.problem(item, f"{where}.method: {method!r} is not an HTTP method{hint}")
                    continue
                methods.append(method.upper())
            match = dataclasses.replace(match, methods=tuple(methods))
        if "path" in keys:
            match = dataclasses.replace(
                match, path=self.glob(keys["path"], f"{where}.path", path=True)
            )
        if "tenant" in keys:
            tenants = [
                self.text(item, f"{where}.tenant") for item in self.one_or_many(keys["tenant"])
            ]
            match = dataclasses.replace(match, tenants=tuple(t for t in tenants if t is not None))
        if "asset_name" in keys:
            name = self.glob(keys["asset_name"], f"{where}.asset_name")
            match = dataclasses.replace(match, asset_name=name)
        if "source_url" in keys:
            url = self.glob(keys["source_url"], f"{where}.source_url")
            match = dataclasses.replace(match, source_url=url)
        if "event" in keys:
            match = dataclasses.replace(match, event=self.glob(keys["event"], f"{where}.event"))
        if "webhook_url" in keys:
            url = self.glob(keys["webhook_url"], f"{where}.webhook_url")
            match = dataclasses.replace(match, webhook_url=url)
        if "nth" in keys:
            nth_node = keys["nth"]
            counts = [
                self.whole(item, f"{where}.nth", minimum=1) for item in self.one_or_many(nth_node)
            ]
            if isinstance(nth_node, SequenceNode) and not nth_node.value:
                self.problem(nth_node, f"{where}.nth is an empty list: the rule would never fire")
            match = dataclasses.replace(match, nth=frozenset(c for c in counts if c is not None))
        if "times" in keys:
            match = dataclasses.replace(
                match, times=self.whole(keys["times"], f"{where}.times", minimum=1)
            )
        if "probability" in keys:
            match = dataclasses.replace(
                match, probability=self.fraction(keys["probability"], f"{where}.probability")
            )
        return match

    def respond(self, node: Node, where: str) -> Respond | None:
        keys = self.mapping(node, f"{where}.respond", ("status", "headers", "body"))
        if keys is None:
            return None
        if "status" not in keys:
            self.problem(node, f"{where}.respond needs a status")
            return None
        status = self.whole(keys["status"], f"{where}.respond.status")
        if status is not None and not 200 <= status <= 599:
            self.problem(keys["status"], f"{where}.respond.status must be 200-599, got {status}")
        headers: list[tuple[str, str]] = []
        if "headers" in keys:
            if not isinstance(keys["headers"], MappingNode):
                self.wrong(keys["headers"], f"{where}.respond.headers", "a mapping")
            else:
                for name_node, value_node in keys["headers"].value:
                    name = self.text(name_node, f"{where}.respond.headers name")
                    value = (
                        self.value(value_node) if isinstance(value_node, ScalarNode) else _INVALID
                    )
                    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                        self.wrong(value_node, f"{where}.respond.headers value", "text or a number")
                    elif name is not None:
                        headers.append((name, str(value)))
        body = self.value(keys["body"]) if "body" in keys else None
        return Respond(status=status or 500, headers=tuple(headers), body=body)

    def drop(self, node: Node, where: str) -> int | None:
        """0 to drop at once, N to drop after N bytes of the body, None if not valid."""
        if isinstance(node, ScalarNode) and self.value(node) is True:
            return 0
        keys = self.mapping(node, where, ("after_bytes",))
        if keys is None:
            return None
        if "after_bytes" not in keys:
            return 0
        return self.whole(keys["after_bytes"], f"{where}.after_bytes", minimum=0)

    def webhook(self, node: Node, where: str) -> WebhookFault | None:
        """`webhook: {drop|duplicate|reorder|bad_signature: true}` or `{delay: 2s}`."""
        keys = self.mapping(node, where, FAULT_ACTIONS, word="webhook fault")
        if keys is None:
            return None
        if len(keys) != 1:
            self.problem(node, f"{where} names one of {', '.join(FAULT_ACTIONS)}")
            return None
        action, value = next(iter(keys.items()))
        if action == "delay":
            delay = self.duration(value, f"{where}.delay")
            return None if delay is None else WebhookFault("delay", delay)
        if not isinstance(value, ScalarNode) or self.value(value) is not True:
            self.wrong(value, f"{where}.{action}", "true")
            return None
        return WebhookFault(action)

    def processing(self, node: Node, where: str) -> ProcessingFault | None:
        keys = self.mapping(
            node, where, ("fail_at_progress", "error", "fail_times", "stall_at_progress")
        )
        if keys is None:
            return None
        fault = ProcessingFault()
        if "error" in keys:
            error = self.text(keys["error"], f"{where}.error")
            fault = dataclasses.replace(fault, error=error or DEFAULT_FAULT_ERROR)
        if "fail_at_progress" in keys:
            at = self.fraction(keys["fail_at_progress"], f"{where}.fail_at_progress")
            fault = dataclasses.replace(fault, fail_at_progress=at)
        if "stall_at_progress" in keys:
            at = self.fraction(keys["stall_at_progress"], f"{where}.stall_at_progress")
            fault = dataclasses.replace(fault, stall_at_progress=at)
        if "fail_times" in keys:
            fault = dataclasses.replace(
                fault,
                fail_times=self.whole(keys["fail_times"], f"{where}.fail_times", minimum=1) or 0,
            )
        failing = "fail_at_progress" in keys or "fail_times" in keys
        if not failing and "stall_at_progress" not in keys:
            self.problem(node, f"{where} needs fail_at_progress, fail_times or stall_at_progress")
        elif failing and "stall_at_progress" in keys:
            self.problem(keys["stall_at_progress"], f"{where}: a task cannot both stall and fail")
        return fault
