"""The emulator's own HTTP calls to a server: the test handle, `healthcheck` and
`webhooks trigger` all send through `send`.

Standard library only, so the pytest plugin and the image's HEALTHCHECK import nothing
else. A call to 127.0.0.1, ::1 or localhost never goes through a proxy: CI jobs often set
`http_proxy`/`HTTP_PROXY` without listing loopback in `no_proxy`, and a proxy cannot reach
this machine's loopback anyway. Other hosts (an emulator in a service container, say) go
the way the environment says, as any HTTP client's would.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO


@dataclass(frozen=True)
class Answer:
    """What the server answered, error statuses included."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError if it is not."""
        return json.loads(self.body)


class Unreachable(Exception):
    """No HTTP answer at all: refused, timed out, cut off, or a URL that cannot be sent."""

    def __init__(self, url: str, reason: object) -> None:
        super().__init__(f"{url} unreachable: {reason}")
        self.url = url
        self.reason = reason


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1, localhost and *.localhost (which resolve only to loopback)."""
    if not host:
        return False
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def send(
    method: str,
    url: str,
    *,
    data: bytes | BinaryIO | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float,
    limit: int | None = None,
    direct: bool = False,
) -> Answer:
    """One HTTP call. `data` may be an open file, streamed in blocks (give its
    Content-Length in `headers`); `limit` caps the bytes of the body read back.

    No proxy for a loopback host, or for any host when `direct` (a server known to be on
    this machine). Raises Unreachable when there is no HTTP answer.
    """
    try:
        request = urllib.request.Request(url, data, dict(headers or {}), method=method)
        opener = _opener(direct or is_loopback(urllib.parse.urlsplit(url).hostname))
        try:
            with opener.open(request, timeout=timeout) as resp:
                return Answer(resp.status, _read(resp, limit))
        except urllib.error.HTTPError as err:
            try:
                return Answer(err.code, _read(err, limit))
            finally:
                err.close()
    except urllib.error.URLError as exc:
        raise Unreachable(url, exc.reason) from None
    # OSError: reset, timeout; HTTPException: a garbled answer; ValueError: a bad URL.
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Unreachable(url, exc) from None


def _opener(direct: bool) -> urllib.request.OpenerDirector:
    if direct:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    # Built per call: ProxyHandler() reads the proxy variables when it is made.
    return urllib.request.build_opener()


def _read(body: Any, limit: int | None) -> bytes:
    return bytes(body.read() if limit is None else body.read(limit))
