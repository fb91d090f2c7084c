"""Webhook events as the service raises them: names, and the sink the service emits into.

The service says *what happened* (an event name and the asset or task as it now is) at
the transitions of Studio's lifecycle; what happens next (fan-out to subscribed webhooks,
signing, retries) belongs to emulator/delivery.py. Emitting never waits: it only hands
the event over, so no API request and no processing step is slowed by a receiver.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from emulator.models import Doc, StepKind

ASSET_EVENTS = ("asset.created", "asset.updated", "asset.ready", "asset.failed", "asset.deleted")
TASK_EVENTS = ("task.spawned", "task.updated", "task.completed", "task.failed")
# Studio's whole list (schema `webhook.events`): a webhook may subscribe to any of them,
# though the emulator only ever raises the asset and task ones.
ALL_EVENTS = (
    "stream.started",
    "stream.detection",
    "stream.idle",
    "recording.ready",
    "recording.started",
    "recording.waiting",
    "multistream.connected",
    "multistream.error",
    "multistream.disconnected",
    "playback.user.new",
    "playback.accessControl",
    *ASSET_EVENTS,
    *TASK_EVENTS,
)


# What a scenario's `webhook:` effect can do to a delivery.
FAULT_ACTIONS = ("drop", "delay", "duplicate", "reorder", "bad_signature")


@dataclass(frozen=True)
class WebhookFault:
    """One delivery fault: never delivered, held on the clock, sent twice (same event
    id), held until the webhook's next delivery has gone, or signed with a wrong key."""

    action: str  # one of FAULT_ACTIONS
    delay_ms: int = 0  # for "delay"


@dataclass(frozen=True)
class Event:
    """One emitted event: its id stays the same for every attempt to deliver it."""

    id: str
    tenant: str
    name: str
    created_at: int
    subject: Doc  # the stored asset or task, frozen at emission time


class EventSink(Protocol):
    def emit(self, tenant: str, events: Sequence[tuple[str, Doc]]) -> list[str]:
        """Hand over events (name, asset-or-task doc) in order; returns their ids."""
        ...


class NoEvents:
    """The default sink: nothing is subscribed."""

    def emit(self, tenant: str, events: Sequence[tuple[str, Doc]]) -> list[str]:
        return []


NO_EVENTS = NoEvents()


def freeze(doc: Doc) -> Doc:
    # The service keeps mutating its documents; an event shows them as they were.
    return copy.deepcopy(doc)


def step_events(kind: StepKind, asset: Doc, task: Doc) -> list[tuple[str, Doc]]:
    """What Studio's task scheduler emits for one runner report (fact sheet §4)."""
    if kind is StepKind.READY:
        return [
            ("task.updated", task),
            ("task.completed", task),
            ("asset.updated", asset),
            ("asset.ready", asset),
        ]
    if kind is StepKind.FAIL:
        return [
            ("task.updated", task),
            ("task.failed", task),
            ("asset.updated", asset),
            ("asset.failed", asset),
        ]
    if kind is StepKind.RETRY:  # the task is re-queued; the asset row is not written
        return [("task.updated", task)]
    return [("task.updated", task), ("asset.updated", asset)]
