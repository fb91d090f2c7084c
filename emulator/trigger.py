"""`livepeer-emulator webhooks trigger EVENT --asset ID`: send one event on demand, like
`stripe trigger`, through a running server's POST /_emulator/webhooks/trigger.

Standard library only, like the healthcheck: it is a small client of the control plane,
calling through `emulator.loopback` (no proxy for a server on loopback).
"""

from __future__ import annotations

import json
from typing import Any

from emulator import loopback
from emulator.healthcheck import local_root
from emulator.settings import Settings

TRIGGER_PATH = "/_emulator/webhooks/trigger"


def server_url(settings: Settings) -> str:
    """The server on this machine that these settings describe (0.0.0.0 → loopback)."""
    return local_root(settings.host, settings.port)


def trigger(
    base_url: str, api_key: str, event: str, asset_id: str, timeout: float
) -> tuple[bool, list[str]]:
    """(ok, lines to print): the event sent, and how each subscribed webhook answered."""
    url = base_url.rstrip("/") + TRIGGER_PATH
    try:
        answer = loopback.send(
            "POST",
            url,
            data=json.dumps({"event": event, "asset": asset_id}).encode(),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
        )
    except loopback.Unreachable as exc:
        return False, [str(exc)]
    if not 200 <= answer.status < 300:
        return False, [f"{url} answered {answer.status}: {_errors(answer.body)}"]
    try:
        result: Any = answer.json()
    except ValueError:
        return False, [f"{url} answered {answer.status} without JSON: {_errors(answer.body)}"]
    deliveries = result.get("deliveries") or []
    lines = [f"sent {result.get('event')} about asset {asset_id} (event id {result.get('id')})"]
    if not deliveries:
        lines.append(
            f"nothing sent now: no webhook of this API key subscribes to {event}, "
            "or a scenario rule dropped or held the delivery"
        )
    for d in deliveries:
        answer = (d.get("response") or {}).get("status") or d.get("error", "no answer")
        ms = round(float(d.get("duration") or 0) * 1000)
        lines.append(f"POST {d['request']['url']} -> {answer} ({ms} ms)")
    return all(d.get("success") for d in deliveries), lines


def _errors(raw: bytes) -> str:
    try:
        return "; ".join(json.loads(raw)["errors"])
    except (ValueError, KeyError, TypeError):
        return raw[:200].decode("utf-8", "replace")
