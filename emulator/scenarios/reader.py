"""A scenario's YAML nodes → a validated Scenario: the top level, the timeline, and each
fault rule with its match and effects. Every problem is collected, with its line, before
the scenario is refused, so one run shows them all.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from emulator.models import FAULT_ACTIONS, WebhookFault
from emulator.renditions import OUTPUT_MODES
from emulator.scenarios.model import (
    ASSET_ONLY_KEYS,
    HTTP_EFFECTS,
    HTTP_METHODS,
    HTTP_ONLY_KEYS,
    MATCH_KEYS,
    RULE_KEYS,
    TIMELINE_KEYS,
    TOP_KEYS,
    WEBHOOK_ONLY_KEYS,
    Match,
    Respond,
    Rule,
    Scenario,
)
from emulator.scenarios.nodes import INVALID, NodeReader
from emulator.scenarios.problems import Problem, ScenarioError
from emulator.timeline import DEFAULT_FAULT_ERROR, DEFAULT_PROFILE, ProcessingFault, TimelineProfile

# Where each match key applies, for telling a user which rules may use it.
_KEY_KINDS = {
    **dict.fromkeys(HTTP_ONLY_KEYS, ("http", "HTTP")),
    **dict.fromkeys(ASSET_ONLY_KEYS, ("processing import export", "processing, import and export")),
    **dict.fromkeys(WEBHOOK_ONLY_KEYS, ("webhook", "webhook")),
}


class ScenarioReader(NodeReader):
    """Walks the composed YAML nodes, building a Scenario and collecting every problem."""

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
        outputs = (
            self.choice(keys["outputs"], "outputs", OUTPUT_MODES) if "outputs" in keys else None
        )
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
            outputs=outputs,
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
        return DEFAULT_PROFILE._replace(**changes)

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
                "drop_connection), processing, import, webhook and export go in separate rules",
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
        if "export" in keys:
            export = self.processing(keys["export"], f"{where}.export", export=True)
            rule = dataclasses.replace(rule, export=export)
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
            match = match._replace(methods=tuple(methods))
        if "path" in keys:
            match = match._replace(path=self.glob(keys["path"], f"{where}.path", path=True))
        if "tenant" in keys:
            tenants = [
                self.text(item, f"{where}.tenant") for item in self.one_or_many(keys["tenant"])
            ]
            match = match._replace(tenants=tuple(t for t in tenants if t is not None))
        # The plain glob keys, each read the same way into the Match field of its name. Any:
        # mypy checks a **dict's values against every Match field, not only these four.
        globs: dict[str, Any] = {
            key: self.glob(keys[key], f"{where}.{key}")
            for key in ("asset_name", "source_url", "event", "webhook_url")
            if key in keys
        }
        match = match._replace(**globs)
        if "nth" in keys:
            nth_node = keys["nth"]
            counts = [
                self.whole(item, f"{where}.nth", minimum=1) for item in self.one_or_many(nth_node)
            ]
            if isinstance(nth_node, SequenceNode) and not nth_node.value:
                self.problem(nth_node, f"{where}.nth is an empty list: the rule would never fire")
            match = match._replace(nth=frozenset(c for c in counts if c is not None))
        if "times" in keys:
            match = match._replace(times=self.whole(keys["times"], f"{where}.times", minimum=1))
        if "probability" in keys:
            match = match._replace(
                probability=self.fraction(keys["probability"], f"{where}.probability")
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
                        self.value(value_node) if isinstance(value_node, ScalarNode) else INVALID
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

    def processing(self, node: Node, where: str, *, export: bool = False) -> ProcessingFault | None:
        """A `processing:` fault, or (`export`) an `export:` one, whose `error` alone
        fails the export task at its start."""
        keys = self.mapping(
            node, where, ("fail_at_progress", "error", "fail_times", "stall_at_progress")
        )
        if keys is None:
            return None
        fault = ProcessingFault()
        if "error" in keys:
            error = self.text(keys["error"], f"{where}.error")
            fault = fault._replace(error=error or DEFAULT_FAULT_ERROR)
        if "fail_at_progress" in keys:
            at = self.fraction(keys["fail_at_progress"], f"{where}.fail_at_progress")
            fault = fault._replace(fail_at_progress=at)
        if "stall_at_progress" in keys:
            at = self.fraction(keys["stall_at_progress"], f"{where}.stall_at_progress")
            fault = fault._replace(stall_at_progress=at)
        if "fail_times" in keys:
            fault = fault._replace(
                fail_times=self.whole(keys["fail_times"], f"{where}.fail_times", minimum=1) or 0,
            )
        failing = "fail_at_progress" in keys or "fail_times" in keys
        if export and not failing and "stall_at_progress" not in keys:
            if "error" not in keys:
                self.problem(
                    node, f"{where} needs error, fail_at_progress, fail_times or stall_at_progress"
                )
            return fault._replace(fail_at_progress=0.0)
        if not failing and "stall_at_progress" not in keys:
            self.problem(node, f"{where} needs fail_at_progress, fail_times or stall_at_progress")
        elif failing and "stall_at_progress" in keys:
            self.problem(keys["stall_at_progress"], f"{where}: a task cannot both stall and fail")
        return fault
