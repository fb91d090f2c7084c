"""Driving an emulator from test code: the per-test handle and the servers behind it.

`Emulator` is what the `livepeer_emulator` fixture gives a test: one fresh tenant on a
running server, reached only through HTTP (the API and the `/_emulator/*` control plane),
so the same handle works for the in-process server, a `serve` process or a container.
Its calls use the standard library only (through `emulator.loopback`, so never through a
proxy to a loopback server), so plain sync tests need nothing else, and async tests may
call it too (the server never runs on the test's event loop).

Importing this module imports neither aiohttp nor the emulator itself: `InProcessServer`
does that when it starts, so a project that never uses the fixture pays nothing.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from emulator import loopback

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

HTTP_TIMEOUT = 60.0  # seconds for one call: a PUT of a large file, or a long advance
TERMINAL_PHASES = ("ready", "failed", "deleted")
JOURNAL_PAGE = 1000  # calls per GET /_emulator/requests page (the server's maximum)

ScenarioSpec = str | os.PathLike[str] | Mapping[str, Any]


class EmulatorError(AssertionError):
    """The emulator answered something a test helper did not expect.

    An AssertionError, so pytest reports it as a test failure with this message.
    """


class AssetPhaseError(EmulatorError):
    """wait_for_asset ended with the asset in another phase than the one wanted."""

    def __init__(self, message: str, asset: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.asset = asset


def root_url(url: str) -> str:
    """A server's root from what a user passes: `http://host:port`, with or without /api."""
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an emulator URL (expected http://HOST:PORT): {url!r}")
    return url


def call(
    method: str,
    url: str,
    *,
    key: str | None = None,
    json_body: Any = None,
    data: bytes | BinaryIO | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """One HTTP call → (status, decoded JSON, the text if not JSON, or None if empty).

    `data` may be an open file, streamed in blocks (give its Content-Length in `headers`).
    """
    if json_body is not None:
        data = json.dumps(json_body).encode()
        content_type = content_type or "application/json"
    sent = dict(headers or {})
    if content_type:
        sent["Content-Type"] = content_type
    if key:
        sent["Authorization"] = f"Bearer {key}"
    try:
        answer = loopback.send(method, url, data=data, headers=sent, timeout=HTTP_TIMEOUT)
    except loopback.Unreachable as exc:
        raise EmulatorError(f"cannot reach the emulator at {url}: {exc.reason}") from None
    if not answer.body:
        return answer.status, None
    try:
        return answer.status, answer.json()
    except ValueError:
        return answer.status, answer.body.decode("utf-8", errors="replace")


class Emulator:
    """One test's view of an emulator: a fresh tenant (API key) and helpers around it."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = root_url(base_url)
        self.api_url = self.base_url + "/api"
        self.api_key = api_key or f"pytest-{uuid.uuid4()}"
        self._signing_key: dict[str, Any] | None = None  # signing_key(), made on first use

    def __repr__(self) -> str:
        return f"Emulator(api_url={self.api_url!r}, api_key={self.api_key!r})"

    # -- plain calls ----------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """`path` under the server root (`/api/asset`, `/_emulator/clock`) as this tenant."""
        return call(method, self.base_url + path, key=self.api_key, json_body=body)

    def _ok(self, method: str, path: str, body: Any = None, what: str = "") -> Any:
        status, answer = self.request(method, path, body)
        if not 200 <= status < 300:
            raise EmulatorError(f"{what or method + ' ' + path} answered {status}: {answer}")
        return answer

    # -- time ------------------------------------------------------------------------------

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move this tenant's manual clock and apply every step that fell due, in order.

        Returns `{"now": ms, "applied": n}`. Other tenants' time does not move.
        """
        answer: dict[str, Any] = self._ok(
            "POST", "/_emulator/clock/advance", {"seconds": seconds}, "advancing the clock"
        )
        return answer

    def now(self) -> int:
        """This tenant's time in ms (what createdAt and the journal's `time` use)."""
        return int(self._ok("GET", "/_emulator/clock")["now"])

    # -- assets ----------------------------------------------------------------------------

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._ok("GET", f"/api/asset/{asset_id}", what="the asset")
        return answer

    def upload(self, path: str | os.PathLike[str], name: str | None = None) -> dict[str, Any]:
        """request-upload + a direct PUT of the file, as a client would; returns the asset."""
        media = Path(path)
        created = self._ok(
            "POST", "/api/asset/request-upload", {"name": name or media.name}, "request-upload"
        )
        with media.open("rb") as body:
            status, answer = call(
                "PUT",
                created["url"],
                data=body,
                content_type="application/octet-stream",
                headers={"Content-Length": str(media.stat().st_size)},
            )
        if status != 200:
            raise EmulatorError(f"uploading {media} answered {status}: {answer}")
        return self.get_asset(created["asset"]["id"])

    def wait_for_asset(
        self, asset_id: str, phase: str = "ready", timeout: float = 600.0
    ) -> dict[str, Any]:
        """Advance this tenant's time until the asset reaches `phase`; returns the asset.

        No sleeping, and no guessing: each move takes time exactly to the next planned
        transition (`{"next": true}`), so the asset is seen in every phase it passes
        through, up to `timeout` seconds of emulated time. Raises AssetPhaseError, with
        the asset's status and errorMessage, if it settles in another phase or nothing
        more is planned for it.
        """
        started = self.now()
        while True:
            status, asset = self.request("GET", f"/api/asset/{asset_id}")
            if status == 404:
                raise AssetPhaseError(f"asset {asset_id} does not exist (404)", None)
            if status != 200:
                raise EmulatorError(f"reading asset {asset_id} answered {status}: {asset}")
            current = asset.get("status", {}).get("phase")
            if current == phase:
                return dict(asset)
            if current in TERMINAL_PHASES:
                headline = f"asset {asset_id} ended {current!r}, not {phase!r}"
                raise AssetPhaseError(_describe(asset, headline), asset)
            moved = self._ok(
                "POST", "/_emulator/clock/advance", {"next": True}, "advancing the clock"
            )
            stalled = moved["applied"] == 0 and "nextDue" not in moved
            if stalled or moved["now"] - started > timeout * 1000:
                headline = (
                    f"asset {asset_id} is still {current!r} with nothing more planned, not "
                    f"{phase!r}"
                    if stalled
                    else f"asset {asset_id} is still {current!r} after {timeout:g} s of "
                    f"emulated time, not {phase!r}"
                )
                if current == "uploading":
                    headline += " (was its file ever uploaded?)"
                raise AssetPhaseError(_describe(asset, headline), asset)

    # -- access control --------------------------------------------------------------------

    def signing_key(self) -> dict[str, Any]:
        """This tenant's signing key, made on first use (POST /api/access-control/
        signing-key): the document Studio answers, with its one-time `privateKey`."""
        if self._signing_key is None:
            self._signing_key = self._ok(
                "POST", "/api/access-control/signing-key", {}, "creating a signing key"
            )
        return dict(self._signing_key)

    def sign_playback_jwt(
        self,
        asset: Mapping[str, Any] | str,
        expires_in: float = 3600,
        **claims: Any,
    ) -> str:
        """A playback JWT for an asset (its document, or a playback id), as an app's
        backend signs one (the claims of @livepeer/core's signAccessJwt), ES256 with
        `signing_key()`. Issued and expiring on this tenant's clock: advance it by
        `expires_in` seconds and the token is refused. `claims` add to or replace the
        claims (None removes one). Needs PyJWT and cryptography (the package's own)."""
        import base64

        import jwt

        playback_id = asset if isinstance(asset, str) else str(asset["playbackId"])
        key = self.signing_key()
        issued = self.now() // 1000
        payload: dict[str, Any] = {
            "action": "pull",
            "iss": "livepeer-emulator",
            "pub": key["publicKey"],
            "sub": playback_id,
            "video": "none",
            "iat": issued,
            "exp": issued + int(expires_in),
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        private_pem = base64.b64decode(key["privateKey"])
        return str(jwt.encode(payload, private_pem, algorithm="ES256"))

    # -- scenarios -------------------------------------------------------------------------

    def use_scenario(self, scenario: ScenarioSpec) -> dict[str, Any]:
        """Put a scenario in force for this tenant only: a shipped name, a YAML/JSON file,
        or a mapping written like a scenario file. Returns what the server now applies."""
        if isinstance(scenario, Mapping):
            body, kind = json.dumps(dict(scenario)).encode(), "application/json"
        elif isinstance(scenario, os.PathLike) or _looks_like_a_file(scenario):
            # Sent as text, so a server in a container needs no access to the file.
            body, kind = Path(scenario).read_bytes(), "application/yaml"
        else:
            body, kind = json.dumps({"name": scenario}).encode(), "application/json"
        status, answer = call(
            "PUT",
            self.base_url + "/_emulator/scenario",
            key=self.api_key,
            data=body,
            content_type=kind,
        )
        if status != 200:
            problems = answer.get("errors", answer) if isinstance(answer, dict) else answer
            raise EmulatorError(f"scenario {scenario!r} was refused ({status}): {problems}")
        return dict(answer)

    # -- the request journal ---------------------------------------------------------------

    def requests(
        self, method: str | None = None, path: str | None = None, since: int | None = None
    ) -> list[dict[str, Any]]:
        """This tenant's HTTP calls, oldest first: method, path, query, status, body and
        response (their first KiB: `bodyTruncated`/`responseTruncated` mark a cut one;
        `request_detail(id)` has the rest), faultInjected. `path` is a glob such as
        "/api/asset/*"."""
        query = {"method": method, "path": path, "since": since, "limit": JOURNAL_PAGE}
        newest_first: list[dict[str, Any]] = []
        # The server lists newest first, a page at a time; the journal is a bounded ring,
        # so this ends, and the handle keeps its oldest-first order.
        while True:
            params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
            page: list[dict[str, Any]] = self._ok(
                "GET", f"/_emulator/requests?{params}", what="the journal"
            )
            newest_first.extend(page)
            if len(page) < JOURNAL_PAGE:
                return newest_first[::-1]
            query["before"] = page[-1]["id"]

    def request_detail(self, call_id: int) -> dict[str, Any]:
        """One call of this tenant's with all the journal kept of its bodies."""
        answer: dict[str, Any] = self._ok(
            "GET", f"/_emulator/requests/{call_id}", what=f"journal entry {call_id}"
        )
        return answer

    def clear_requests(self) -> int:
        return int(self._ok("DELETE", "/_emulator/requests")["cleared"])

    # -- the official SDK ------------------------------------------------------------------

    def sdk(self) -> Any:
        """An official `livepeer.Livepeer` client bound to this tenant."""
        try:
            from livepeer import Livepeer
        except ImportError:
            raise EmulatorError(
                "sdk() needs the official SDK: pip install livepeer (PyPI)"
            ) from None
        return Livepeer(api_key=self.api_key, server_url=self.api_url)


def _looks_like_a_file(value: str) -> bool:
    return value.endswith((".yaml", ".yml", ".json")) or os.sep in value or "/" in value


def _describe(asset: dict[str, Any], headline: str) -> str:
    """The headline, the asset's errorMessage when it has one, and its whole status."""
    status = asset.get("status", {})
    if status.get("errorMessage"):
        headline += f": errorMessage {status['errorMessage']!r}"
    return f"{headline}\nstatus: {json.dumps(status)}"


class InProcessServer:
    """The emulator on 127.0.0.1 (a free port), in its own thread and event loop.

    On its own loop, it serves sync tests (which block while calling it) and async tests
    (whose loop is a different one) alike. The clock is manual, the data dir the caller's.
    """

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = data_dir
        self.overrides = settings
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    def start(self, timeout: float = 60.0) -> InProcessServer:
        import asyncio
        import dataclasses

        from emulator.settings import Settings

        # The environment may name ffprobe, a default scenario or timeouts, but the
        # fixture decides where and how to listen, and that every key is its own tenant.
        fixed: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "data_dir": self.data_dir,
            "clock": "manual",
            "api_key": (),
            "admin_key": (),  # keys in the environment are for `serve`, not the fixture
            "public_url": None,
        }
        settings = dataclasses.replace(Settings.load(), **{**fixed, **self.overrides})
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name="livepeer-emulator", daemon=True
        )
        self._thread.start()
        try:
            port = asyncio.run_coroutine_threadsafe(self._serve(settings), loop).result(timeout)
        except BaseException:
            self.stop()
            raise
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def _serve(self, settings: Any) -> int:
        from aiohttp import web

        from emulator.app import create_app

        runner = web.AppRunner(create_app(settings), access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port: int = runner.addresses[0][1]
        return port

    def stop(self, timeout: float = 30.0) -> None:
        import asyncio

        loop, self._loop = self._loop, None
        if loop is None:
            return
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        loop.close()

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def check_reachable(base_url: str) -> None:
    """Fail early, and clearly, when an external emulator is not there."""
    status, answer = call("GET", root_url(base_url) + "/_emulator/health")
    if status != 200:
        raise EmulatorError(
            f"{base_url} does not look like a livepeer-emulator: "
            f"GET /_emulator/health answered {status}: {answer}"
        )
