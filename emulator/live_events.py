"""Live event streams: every webhook event, as it leaves the outbox, to open listeners.

`livepeer-emulator listen` (emulator/listen.py) reads them through
GET /_emulator/events/stream (emulator/routes/events.py). Events are taken where the
outbox is drained (delivery.Deliveries calls `publish` once a batch is fanned out and
committed), so a listener sees exactly the events webhooks get, in outbox order, each once,
and never one whose change was rolled back. Their outbox `seq` is the stream's event id,
and it only grows (AUTOINCREMENT), also across restarts, so a client's Last-Event-ID still
means something after the server came back.

Everything is bounded: the last KEEP events are kept for clients that reconnect, a
listener's queue holds QUEUE events (past that, new ones are dropped and counted, and the
listener is told how many), and at most MAX_STREAMS listeners are open at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from emulator.models import Event

KEEP = 1000  # recent events kept in memory for Last-Event-ID, all tenants together
QUEUE = 1000  # events waiting for one listener that reads too slowly
MAX_STREAMS = 64  # open listeners, all tenants together


class TooManyStreams(Exception):
    pass


@dataclass(eq=False)  # compared and hashed by identity: streams live in sets
class Subscription:
    """One open stream: the tenant it is for (None: every tenant) and the events it wants
    (empty: all). `take` hands out what arrived; `dropped` counts what did not fit."""

    tenant: str | None
    names: frozenset[str]
    queue: deque[Event] = field(default_factory=deque)
    dropped: int = 0
    missed_before: int | None = None  # a gap in what could be replayed: see subscribe
    closed: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: Event) -> bool:
        return self.tenant in (None, event.tenant) and (not self.names or event.name in self.names)

    def offer(self, event: Event) -> None:
        if len(self.queue) >= QUEUE:
            self.dropped += 1
        else:
            self.queue.append(event)
        self.wake.set()

    def take(self) -> tuple[list[Event], int]:
        """(the events waiting, how many were dropped since the last take)."""
        events, dropped = list(self.queue), self.dropped
        self.queue.clear()
        self.dropped = 0
        self.wake.clear()
        return events, dropped

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class LiveEvents:
    """The streams open now, and the last KEEP events for those that reconnect."""

    def __init__(self) -> None:
        self._recent: deque[Event] = deque(maxlen=KEEP)
        self._streams: set[Subscription] = set()
        self._first_seq: int | None = None  # the first event this process published
        self._evicted_up_to = 0  # the newest seq pushed out of _recent

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    def publish(self, events: Sequence[Event]) -> None:
        """Stored events just left the outbox (Deliveries' fan-out committed them)."""
        for event in events:
            if event.seq is None:
                continue
            if self._first_seq is None:
                self._first_seq = event.seq
            if len(self._recent) == KEEP:
                self._evicted_up_to = self._recent[0].seq or 0
            self._recent.append(event)
            for stream in self._streams:
                if stream.wants(event):
                    stream.offer(event)

    def subscribe(
        self, tenant: str | None, names: Iterable[str], last_seq: int | None = None
    ) -> Subscription:
        """A new stream, with the kept events after `last_seq` (a reconnecting client's
        Last-Event-ID) already queued. If some after it are no longer kept, or were
        published by a previous run of the server, `missed_before` says from where the
        replay is complete. Synchronous: no event can slip between replay and live."""
        if len(self._streams) >= MAX_STREAMS:
            raise TooManyStreams(f"at most {MAX_STREAMS} event streams may be open at once")
        stream = Subscription(tenant, frozenset(names))
        if last_seq is not None:
            for event in self._recent:
                if (event.seq or 0) > last_seq and stream.wants(event):
                    stream.offer(event)
            kept_from = max(self._evicted_up_to, (self._first_seq or last_seq + 1) - 1)
            if last_seq < kept_from:
                stream.missed_before = kept_from + 1
        self._streams.add(stream)
        return stream

    def unsubscribe(self, stream: Subscription) -> None:
        self._streams.discard(stream)

    def forget(self, tenant: str | None) -> None:
        """A control-plane reset of `tenant` (None: every tenant): its kept events go, and
        so do those still queued for open streams, so that nobody is sent events about
        data that no longer exists, neither live nor replayed to a Last-Event-ID from
        before the reset. Open streams stay open: a listener running across a test
        suite's resets goes on with the events that come after each."""

        def stays(event: Event) -> bool:
            return tenant is not None and event.tenant != tenant

        self._recent = deque((e for e in self._recent if stays(e)), maxlen=KEEP)
        for stream in self._streams:
            if not all(stays(e) for e in stream.queue):
                kept = [e for e in stream.queue if stays(e)]
                stream.queue.clear()
                stream.queue.extend(kept)

    def close_all(self) -> None:
        """The server is stopping: every stream ends now."""
        for stream in list(self._streams):
            stream.close()
