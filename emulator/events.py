"""Webhook events as the service raises them: names, and the sink the service emits into.

The service says *what happened* (an event name and the asset or task as it now is) at
the transitions of Studio's lifecycle; what happens next (fan-out to subscribed webhooks,
signing, retries) belongs to emulator/delivery.py. Emitting never waits: it only hands
the event over, so no API request and no processing step is slowed by a receiver.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

from emulator.models import Doc, Event, StepKind, new_id
from emulator.store import Changes, Store

# In the order of Studio's schema (`webhook.events` enum), which Ajv's enum errors list.
ASSET_EVENTS = ("asset.created", "asset.updated", "asset.failed", "asset.ready", "asset.deleted")
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


class EventSink(Protocol):
    def notify(self) -> None:
        """Events were stored in the outbox (with the change that raised them): go and
        deliver them. Never waits."""
        ...


async def save_with_events(store: Store, sink: EventSink, changes: Changes) -> None:
    """Store a transition with the events it raises (one transaction), then have them
    delivered."""
    await store.save(changes)
    if changes.events:
        sink.notify()


def make_events(tenant: str, now: int, events: Sequence[tuple[str, Doc]]) -> list[Event]:
    """Events (name, asset-or-task doc) in order, each with the id every delivery attempt
    of it will carry, and its subject copied as it is now: the service keeps changing its
    documents, and an event shows them as they were."""
    return [Event(new_id(), tenant, name, now, _snapshot(doc)) for name, doc in events]


def _snapshot(doc: Doc) -> Doc:
    # A JSON round trip rather than copy.deepcopy: it recurses in C, so a document nested
    # a few hundred levels (stored before bodies were depth-capped) still copies.
    copied: Doc = json.loads(json.dumps(doc))
    return copied


def step_events(kind: StepKind, asset: Doc, task: Doc) -> list[tuple[str, Doc]]:
    """What Studio's task scheduler emits for one runner report (task/scheduler.ts): on
    success (processTaskEvent) and on source playback (processTaskResultPartial) it writes
    the asset before the task; on failure (failTask) and on progress (task.ts
    /:id/status) the task first."""
    if kind is StepKind.READY:
        return [
            ("asset.updated", asset),
            ("asset.ready", asset),
            ("task.updated", task),
            ("task.completed", task),
        ]
    if kind is StepKind.SOURCE_READY:
        return [("asset.updated", asset), ("task.updated", task)]
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
