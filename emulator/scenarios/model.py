"""The scenario format's keys, and the values a validated scenario is made of: the fault
rules that the fault middleware, the timeline and webhook deliveries apply, and the
timing profile.

Turning YAML into these values, and saying what is wrong with it, is
emulator/scenarios/reader.py's job; the format is documented in scenarios/README.md.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from emulator.models import WebhookFault
from emulator.timeline import DEFAULT_PROFILE, ProcessingFault, TimelineProfile

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

TOP_KEYS = ("name", "description", "seed", "timeline", "outputs", "faults")
# Timeline keys: the two phases a task spends time in, then how the time is reported.
TIMELINE_KEYS = (
    "queue",
    "processing",
    "progress_steps",
    "processing_per_media_second",
    "retry_delay",
)
RULE_KEYS = (
    "match",
    "respond",
    "delay",
    "drop_connection",
    "processing",
    "import",
    "webhook",
    "export",
)
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
HTTP_EFFECTS = ("respond", "delay", "drop_connection")


class Match(NamedTuple):
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


MATCH_ALL = Match()  # empty fields: every request (or asset)


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


class Respond(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None  # None: Studio's {"errors": [reason]}


@dataclass(frozen=True)
class Rule:
    """One fault rule: a match and its effects. Its kind says where it is applied."""

    index: int
    line: int
    match: Match = MATCH_ALL
    respond: Respond | None = None
    delay_ms: int = 0
    drop_after_bytes: int | None = None  # 0: drop at once
    drop: bool = False
    processing: ProcessingFault | None = None
    import_error: str | None = None
    webhook: WebhookFault | None = None
    export: ProcessingFault | None = None  # how an IPFS export task goes wrong

    @property
    def kind(self) -> str:
        """ "http" (the fault middleware), "processing" (the timeline), "import",
        "webhook" (deliveries) or "export" (IPFS export tasks)."""
        if self.webhook is not None:
            return "webhook"
        if self.export is not None:
            return "export"
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
        if self.export is not None:
            effects.append("export fault")
        return f"faults[{self.index}] (line {self.line}): {', '.join(effects)}"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    seed: int = 0
    timeline: TimelineProfile = DEFAULT_PROFILE
    outputs: str | None = None  # copy | transcode | none; None: the server's --outputs
    faults: tuple[Rule, ...] = ()
    source: str = "<default>"
    definition: dict[str, Any] = field(default_factory=dict)  # as written, for GET

    def rules(self, kind: str) -> list[Rule]:
        return [rule for rule in self.faults if rule.kind == kind]


DEFAULT_SCENARIO = Scenario(name="default")
