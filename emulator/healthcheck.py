"""`livepeer-emulator healthcheck`: is the server on this machine ready to serve?

Used by the image's HEALTHCHECK, so it needs nothing but the standard library (no curl
in the image, no aiohttp import on every probe). The server only answers
/_emulator/health once its database is open and ffprobe was found (both happen before it
listens), so an answer means it can serve.
"""

from __future__ import annotations

import json

from emulator import loopback
from emulator.settings import Settings

HEALTH_PATH = "/_emulator/health"

# A server listening on every interface is asked on loopback; on IPv6's for "::", which
# asyncio binds IPv6-only.
_LOOPBACK = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def listens_everywhere(host: str) -> bool:
    return host in _LOOPBACK


def local_root(host: str, port: int) -> str:
    """http://HOST:PORT that reaches, from this machine, a server listening on host."""
    host = _LOOPBACK.get(host, host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def health_url(settings: Settings) -> str:
    return local_root(settings.host, settings.port) + HEALTH_PATH


def check(settings: Settings, timeout: float) -> tuple[bool, str]:
    """(healthy, one line saying why) for the server these settings describe."""
    if settings.port == 0:
        return False, "the port is 0 (a random one): give the real port with --port"
    url = health_url(settings)
    try:
        # direct: the server is on this machine, whatever its address; no proxy can help.
        answer = loopback.send("GET", url, timeout=timeout, limit=4096, direct=True)
    except loopback.Unreachable as exc:
        return False, f"{url} unreachable: {exc.reason}"
    status, raw = answer.status, answer.body
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        return False, f"{url} answered {status} {raw[:200]!r}"
    return True, f"{url} ok"
