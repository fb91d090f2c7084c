"""`livepeer-emulator listen --forward-to URL`: a running server's webhook events, forwarded
to a local URL and signed, like `stripe listen`.

The server streams its tenant's events (GET /_emulator/events/stream, server-sent events:
emulator/routes/events.py); this client signs each one with its own secret, exactly as a
webhook delivery is signed (delivery.event_body / delivery.signed), POSTs it to the target
and prints one line per event. Nothing is registered on the server: the subscription is
the open stream, so stopping the client (Ctrl-C, SIGTERM) leaves nothing behind. The
forwarding happens here, not in the server, so a server in a container can feed a
receiver on the host.

A server that goes away (restart, crash, network) is reconnected to with backoff, saying
so, and the stream resumes after the last event seen (Last-Event-ID): the server replays
the events it still keeps, and says when some may be missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from emulator.clock import monotonic, real_delay
from emulator.delivery import TIMEOUT_SECONDS, asset_of, event_body, signed

STREAM_PATH = "/_emulator/events/stream"
FIRST_RETRY_SECONDS = 0.5  # then doubling ...
MAX_RETRY_SECONDS = 10.0  # ... up to this
# The server writes at least a comment every 15 s; three missed heartbeats mean it went
# quiet without closing the connection (a paused container, a dead network).
SILENCE_SECONDS = 45.0
CONNECT_SECONDS = 5.0
MAX_EVENT_BYTES = 16 * 1024 * 1024  # one event's lines: snapshots are a few KiB


@dataclass(frozen=True)
class Options:
    server: str  # e.g. http://127.0.0.1:3000
    forward_to: str
    api_key: str | None
    events: tuple[str, ...] = ()  # empty: all
    secret: str = ""  # empty: a new random one


@dataclass
class ServerEvent:
    """One server-sent event."""

    name: str
    data: str
    id: str | None


class Refused(Exception):
    """The server answered, and no retry will change its answer (a bad key, a bad filter)."""


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(16)


async def listen(options: Options, say: Callable[[str], None], stop: asyncio.Event) -> int:
    """Run until `stop` is set (0) or the server refuses the stream (1)."""
    secret = options.secret or new_secret()
    say(f"Your webhook signing secret is {secret} (verify Livepeer-Signature with it)")
    runner = asyncio.ensure_future(_Listener(options, secret, say).run())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([runner, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not runner.done():
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        say("Stopped: nothing was registered on the server, so nothing is left behind")
        return 0
    return runner.result()


class _Listener:
    def __init__(self, options: Options, secret: str, say: Callable[[str], None]) -> None:
        self.options = options
        self.secret = secret
        self.say = say
        # Named in each forward's webhookId, as a webhook's id would be.
        self.session_id = "listen_" + secrets.token_hex(8)
        self.last_id: str | None = None  # the last event forwarded: where to resume
        self.connected = False  # the current stream said `ready`
        self.ever_connected = False
        self.target: aiohttp.ClientSession | None = None

    async def run(self) -> int:
        server = self.options.server.rstrip("/")
        # aiohttp's default trust_env=False: a listener talks to a local server and a
        # local target, which an http_proxy meant for the internet cannot reach.
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            aiohttp.ClientSession(auto_decompress=False) as self.target,
        ):
            failures = 0
            while True:
                try:
                    await self._stream(session, server)
                    reason = "the server closed the stream"
                except Refused as exc:
                    self.say(f"Error: {exc}")
                    return 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                    reason = _describe(exc)
                failures += 1
                wait = min(FIRST_RETRY_SECONDS * 2 ** (failures - 1), MAX_RETRY_SECONDS)
                if self.connected:  # it had worked: start the backoff over
                    failures = 1
                    wait = FIRST_RETRY_SECONDS
                what = "Lost the server" if self.ever_connected else "Cannot reach the server"
                self.say(f"{what} at {server} ({reason}); retrying in {wait:g} s")
                await real_delay(wait)

    async def _stream(self, session: aiohttp.ClientSession, server: str) -> None:
        self.connected = False
        query = {"events": ",".join(self.options.events)} if self.options.events else {}
        url = server + STREAM_PATH + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "text/event-stream"}
        if self.options.api_key:
            headers["Authorization"] = f"Bearer {self.options.api_key}"
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_SECONDS, sock_read=SILENCE_SECONDS
        )
        async with session.get(url, headers=headers, timeout=timeout) as response:
            if response.status != 200:
                message = f"{url} answered {response.status}: {_errors(await response.read())}"
                if response.status in (400, 401, 403, 404):
                    raise Refused(message)
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=message
                )
            async for event in _server_events(response.content):
                await self._handle(event, url)

    async def _handle(self, event: ServerEvent, url: str) -> None:
        if event.name == "ready":
            self.connected = True
            what = ", ".join(self.options.events) or "all events"
            if self.ever_connected:
                after = f" after event {self.last_id}" if self.last_id else ""
                self.say(f"Reconnected to {url}: resuming{after}")
            else:
                self.say(f"Ready! Forwarding {what} to {self.options.forward_to} (Ctrl-C to stop)")
            self.ever_connected = True
        elif event.name in ("dropped", "missed"):
            self.say(f"Warning: {_message(event.data)}")
        elif event.name == "webhook":
            await self._forward(json.loads(event.data))
            if event.id is not None:
                self.last_id = event.id

    async def _forward(self, data: dict[str, Any]) -> None:
        body = event_body(
            data["id"],
            self.session_id,
            data["createdAt"],
            data["timestamp"],
            data["event"],
            data["payload"],
        )
        raw, headers = signed(body, self.secret)
        started = monotonic()
        try:
            assert self.target is not None
            async with self.target.post(
                self.options.forward_to,
                data=raw,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            ) as answer:
                await answer.read()
                outcome = f"{answer.status} {answer.reason or ''}".rstrip()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            outcome = f"failed: {_describe(exc)}"
        ms = round((monotonic() - started) * 1000)
        when = datetime.datetime.fromtimestamp(body["createdAt"] / 1000).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        asset = asset_of(body["payload"]) or "-"
        self.say(f"{when}  {body['event']:<15} {asset}  -> {outcome} ({ms} ms)")


async def _server_events(content: aiohttp.StreamReader) -> AsyncIterator[ServerEvent]:
    """The events of a text/event-stream body (the WHATWG parsing rules that matter
    here: fields, comments, blank-line dispatch, multi-line data)."""
    buffer = b""
    name, event_id = "message", None
    data: list[str] = []
    pending: list[ServerEvent] = []
    async for chunk in content.iter_any():
        buffer += chunk
        if len(buffer) > MAX_EVENT_BYTES:
            raise aiohttp.ClientPayloadError("an event longer than 16 MiB")
        *lines, buffer = buffer.split(b"\n")
        for raw_line in lines:
            line = raw_line.decode("utf-8", "replace").rstrip("\r")
            if not line:
                if data:
                    pending.append(ServerEvent(name, "\n".join(data), event_id))
                name, data = "message", []
                continue
            if line.startswith(":"):
                continue  # a heartbeat
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
        for event in pending:
            yield event
        pending.clear()


def _message(raw: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(raw).get("message", raw))
    return raw


def _errors(raw: bytes) -> str:
    try:
        return "; ".join(json.loads(raw)["errors"])
    except (ValueError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientResponseError) and exc.message:
        return exc.message
    return str(exc) or type(exc).__name__


def parse_events(raw: str | None) -> tuple[str, ...]:
    """`--events a,b` as a tuple (the server checks the names)."""
    return tuple(name.strip() for name in (raw or "").split(",") if name.strip())
