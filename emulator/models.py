"""Plain data shared between layers: ids, received files, probe results, planned steps."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NamedTuple

Doc = dict[str, Any]  # a stored Studio object (asset or task) in its camelCase wire form

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


class AssetPhase(str, Enum):
    UPLOADING = "uploading"
    WAITING = "waiting"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


class TaskPhase(str, Enum):
    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


def new_id() -> str:
    return str(uuid.uuid4())


def new_playback_id(asset_id: str) -> str:
    """16 chars of [0-9a-z]; Studio shards by the first 4, which repeat the asset id's."""
    return asset_id[:4] + "".join(secrets.choice(_BASE36) for _ in range(12))


def tenant_user_id(tenant: str) -> str:
    """A stable userId for a tenant, so objects carry one without storing the key in them."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "livepeer-emulator:user:" + tenant))


def tenant_project_id(tenant: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "livepeer-emulator:project:" + tenant))


class ReceivedFile(NamedTuple):
    """Bytes that arrived completely and were moved into place."""

    path: Path
    size: int


class Digests(NamedTuple):
    """A media file's size and hashes, as the ready asset gives them."""

    size: int
    md5: str
    sha256: str


class ProbeResult(NamedTuple):
    """What ffprobe said: either a videoSpec and media type, or why the file is not media."""

    video_spec: Doc | None = None
    media_type: str | None = None  # "video" | "audio"
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class StepKind(str, Enum):
    START = "start"  # asset → processing, task → running, progress 0
    PROGRESS = "progress"
    # Playable before it is ready (Studio's partial task result): `files` and
    # `sourcePlaybackReady` are set, so playbackUrl and playback info work while processing.
    SOURCE_READY = "source_ready"
    READY = "ready"
    FAIL = "fail"
    RETRY = "retry"  # a retriable failure: task back to waiting with retries + 1


class PlannedStep(NamedTuple):
    """One timed transition, relative to the moment processing was scheduled."""

    offset_ms: int
    kind: StepKind
    progress: float | None = None
    error: str | None = None


@dataclass
class Step:
    """A planned step made concrete: stored in SQLite until its time comes."""

    tenant: str
    due_ms: int
    asset_id: str
    task_id: str
    kind: StepKind
    data: Doc = field(default_factory=dict)
    seq: int | None = None  # assigned by the store; orders steps due at the same time


class Event(NamedTuple):
    """One webhook event: its id stays the same for every attempt to deliver it."""

    id: str
    tenant: str
    name: str
    created_at: int
    subject: Doc  # the stored asset or task, as it was when the event was raised
    seq: int | None = None  # its place in the outbox, once stored


# What a scenario's `webhook:` effect can do to a delivery.
FAULT_ACTIONS = ("drop", "delay", "duplicate", "reorder", "bad_signature")


class WebhookFault(NamedTuple):
    """One delivery fault: never delivered, held on the clock, sent twice (same event
    id), held until the webhook's next delivery has gone, or signed with a wrong key."""

    action: str  # one of FAULT_ACTIONS
    delay_ms: int = 0  # for "delay"
