"""GET /_emulator/events/stream: webhook events as server-sent events, for
`livepeer-emulator listen` (emulator/listen.py) or any EventSource.

The control plane's key rules hold: a key gets its own tenant's events; every tenant's
(`?all=true`, or no key while none is configured) needs an admin key once keys are. Each
event is `id: <outbox seq>`, `event: webhook`, `data: {id, createdAt, timestamp, event,
payload}` (a delivery's body without `webhookId`: whoever forwards it names the receiver);
`event: dropped` says how many events a listener too slow to keep up lost, and
`event: missed` that a reconnecting one (Last-Event-ID) may have missed some. A comment
line every HEARTBEAT_SECONDS keeps idle proxies from closing the stream and lets the
client notice a server that went quiet.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from emulator.clock import real_timeout
from emulator.delivery import event_body, payload_of
from emulator.errors import BadRequest, TooManyRequests
from emulator.events import ALL_EVENTS
from emulator.live_events import LiveEvents, Subscription, TooManyStreams
from emulator.models import Event
from emulator.routes.common import SCHEDULER, control_scope, everyone_asked, origin, public
from emulator.wire import dumps

LIVE_EVENTS = web.AppKey("live_events", LiveEvents)
HEARTBEAT_SECONDS = 15.0
# How often a waiting stream looks whether its client is still connected: aiohttp does not
# cancel a handler whose client left, and a stream would otherwise hold its place (and a
# MAX_STREAMS slot) until the next heartbeat failed to write.
POLL_SECONDS = 1.0
# A client that takes nothing for this long while the server has something to write is
# cut off; it reconnects with Last-Event-ID and gets the kept events again.
WRITE_TIMEOUT_SECONDS = 30.0
_SEQ = re.compile(r"[0-9]{1,18}")


class OpenStreams:
    """The responses being streamed, so a stopping server ends them at once instead of
    waiting for aiohttp's shutdown timeout (as uploads.OpenBodies does for bodies)."""

    def __init__(self) -> None:
        self.writing: dict[Subscription, web.Request] = {}


OPEN_STREAMS = web.AppKey("open_streams", OpenStreams)


async def close_streams(app: web.Application) -> None:
    """on_shutdown: waiting streams end at once; one stuck writing to a client that does
    not read has its connection cut."""
    app[LIVE_EVENTS].close_all()
    for request in list(app[OPEN_STREAMS].writing.values()):
        if request.transport is not None:
            request.transport.abort()


@public
async def stream_events(request: web.Request) -> web.StreamResponse:
    """?events=a,b (default: all), ?all=true (every tenant), Last-Event-ID (a header, or
    ?lastEventId= as EventSource cannot set headers)."""
    who = control_scope(request, everyone_asked(request), "streaming every tenant's events")
    names = _event_names(request.query.get("events", ""))
    last = request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or ""
    if last and not _SEQ.fullmatch(last):
        raise BadRequest(f"Last-Event-ID must be an event id this stream sent, not {last!r}")
    hub = request.app[LIVE_EVENTS]
    try:
        stream = hub.subscribe(who, names, int(last) if last else None)
    except TooManyStreams as exc:
        raise TooManyRequests(str(exc)) from exc
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx in front: do not buffer the stream
            }
        )
        await response.prepare(request)
        # retry: what an EventSource waits before reconnecting.
        ready = {"events": sorted(names) or "all", "scope": "all" if who is None else "tenant"}
        await _write(
            request, stream, response, f"retry: 1000\nevent: ready\ndata: {dumps(ready)}\n\n"
        )
        if stream.missed_before is not None:
            missed = {
                "from": stream.missed_before,
                "message": "events after your Last-Event-ID are no longer kept or were "
                "sent by an earlier run of the server: some may be missing",
            }
            await _write(request, stream, response, f"event: missed\ndata: {dumps(missed)}\n\n")
        await _pump(request, stream, response)
    finally:
        hub.unsubscribe(stream)
    return response


async def _pump(request: web.Request, stream: Subscription, response: web.StreamResponse) -> None:
    scheduler = request.app[SCHEDULER]
    where = origin(request)  # playback URLs in snapshots, as this client reaches the server
    quiet = 0.0
    while not stream.closed:
        events, dropped = stream.take()
        chunks: list[str] = []
        if dropped:
            notice = {
                "dropped": dropped,
                "message": f"{dropped} event(s) dropped: this listener fell behind "
                "(the server holds at most 1000 for it)",
            }
            chunks.append(f"event: dropped\ndata: {dumps(notice)}\n\n")
        chunks += [_frame(event, scheduler.now_ms(event.tenant), where) for event in events]
        if chunks:
            await _write(request, stream, response, "".join(chunks))
            quiet = 0.0
            continue
        transport = request.transport
        if transport is None or transport.is_closing():
            return  # the client left
        if quiet >= HEARTBEAT_SECONDS:
            await _write(request, stream, response, ": ping\n\n")
            quiet = 0.0
        try:
            await real_timeout(stream.wake.wait(), POLL_SECONDS)
        except asyncio.TimeoutError:
            quiet += POLL_SECONDS


def _frame(event: Event, now: int, where: str) -> str:
    body = event_body(
        event.id,
        None,
        event.created_at,
        now,
        event.name,
        payload_of(event.name, event.subject, where),
    )
    return f"id: {event.seq}\nevent: webhook\ndata: {dumps(body)}\n\n"


async def _write(
    request: web.Request, stream: Subscription, response: web.StreamResponse, text: str
) -> None:
    streams = request.app[OPEN_STREAMS]
    streams.writing[stream] = request
    try:
        await real_timeout(response.write(text.encode()), WRITE_TIMEOUT_SECONDS)
    except (asyncio.TimeoutError, ConnectionError):
        # Too slow or gone: cut the connection (a write still pending would hold the
        # handler's end too); the client reconnects with Last-Event-ID.
        stream.close()
        if request.transport is not None:
            request.transport.abort()
    finally:
        streams.writing.pop(stream, None)


def _event_names(raw: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(names - set(ALL_EVENTS))
    if unknown:
        raise BadRequest(
            f"events: unknown event {unknown[0]!r}; use a comma-separated list of "
            + ", ".join(ALL_EVENTS)
        )
    return names
