"""The playback gate: who may fetch an asset's media files (playlists, segments, MP4s,
thumbnails, the download URL), as Livepeer's CDN and Studio's gate decide it together.

In production the CDN (catalyst-api `handlers/accesscontrol`) reads the viewer's
credentials from each media request: an `accessKey` (query, else `Livepeer-Access-Key`)
first, else a `jwt` (query, else `Livepeer-Jwt`). A JWT is checked there: ES256, signed
by the key its `pub` claim carries (a base64 PEM public key), with `sub` (the playback
id), `pub` and `exp` present, not expired, and `exp` at most 7 days ahead. Then Studio's
`POST /access-control/gate` (controllers/access-control.ts) decides: the policy's
`allowedOrigins` against the request's Origin, then by policy type: `public` plays; `jwt`
needs the `pub` to be a signing key of the asset's owner, neither disabled nor deleted;
`webhook` needs an access key, which Studio POSTs to the policy's webhook (signed like
other deliveries) and plays on a 2xx.

Differences, on purpose: signing-key checks are not cached (Studio's gate answers are,
for 2 minutes, so a disabled key there keeps working a little while); a webhook's answer
is cached for the policy's `refreshInterval` seconds (120, the gate's `max-age`, when it
has none), on the emulator's clock, and an unreachable webhook's failure is not cached.
Time is the emulator's: `exp` is compared with the asset owner's clock, so a test on the
manual clock expires a token by advancing time.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard
from urllib.parse import unquote, urlencode

import aiohttp

from emulator.clock import SystemClock, real_timeout
from emulator.delivery import USER_AGENT, sign
from emulator.errors import (
    ApiError,
    BadGateway,
    BadRequest,
    Forbidden,
    InternalServerError,
    Unauthorized,
)
from emulator.models import Doc
from emulator.scheduler import Scheduler
from emulator.signing_keys import SigningKeys
from emulator.store import AssetRow, Store

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

GATE_TIMEOUT_SECONDS = 30.0  # access-control.ts WEBHOOK_TIMEOUT (2 s on the manual clock)
GATE_REDIRECTS = 5  # fetchWithTimeoutAndRedirects' maxRedirects
DEFAULT_REFRESH_SECONDS = 120  # the gate's `Cache-Control: max-age=120`
MAX_EXP_AHEAD_SECONDS = 7 * 24 * 3600  # catalyst: "exp claim too far in the future"
CACHE_ENTRIES = 10_000  # webhook answers kept, all tenants together
ANSWER_BYTES = 64 * 1024  # of a webhook's body, read for its `ret`
JWT_ALGORITHMS = ["ES256"]  # signing keys are P-256: ES256 is the only one that verifies
# Query parameters a tokenised playlist carries on to the URLs it lists.
CARRIED = ("jwt", "accessKey")


class Credentials(NamedTuple):
    """What a media request brings: its token or access key, and where it comes from."""

    jwt: str | None = None
    access_key: str | None = None
    origin: str | None = None  # the Origin header as sent (None: not sent)
    referer: str | None = None


class Grant(NamedTuple):
    """A media request may go on. `gated`: the asset is not public to everyone, so what is
    served must not sit in a shared cache."""

    gated: bool


@dataclass
class _Answer:
    """A webhook's decision (None: allowed) and until when it holds."""

    error: ApiError | None
    tenant: str
    expires_ms: int
    cache: bool


class PlaybackAccess:
    def __init__(self, *, store: Store, scheduler: Scheduler, signing_keys: SigningKeys) -> None:
        self._store = store
        self._scheduler = scheduler
        self._keys = signing_keys
        # A test on the manual clock waits on its media request: a webhook gets 2 s there.
        self._timeout = scheduler.patience(GATE_TIMEOUT_SECONDS)
        self._answers: OrderedDict[tuple[str, ...], _Answer] = OrderedDict()
        self._asking: dict[tuple[str, ...], asyncio.Task[_Answer]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for task in list(self._asking.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def forget(self, tenant: str | None) -> None:
        """Drop cached webhook answers about a tenant's assets (None: everyone's)."""
        for key in [k for k, a in self._answers.items() if tenant in (None, a.tenant)]:
            del self._answers[key]

    async def check(self, playback_id: str, creds: Credentials) -> Grant:
        """Allow the request, or raise the refusal a player gets: 401 without any
        credentials, 403 for refused ones, 502 when the gate's webhook cannot be reached."""
        row = await self._store.get_asset_by_playback_id(playback_id)
        if row is None or "deleted" in row.doc:
            return Grant(gated=False)  # nothing to play: the file lookup answers 404
        policy: Doc = row.doc.get("playbackPolicy") or {}
        kind = policy.get("type") or "public"
        gated = kind != "public" or bool(policy.get("allowedOrigins"))
        # The CDN reads an access key first; only without one does it look at a JWT, and
        # a JWT it cannot accept is refused whatever the policy (a public asset too).
        pub = None
        if not creds.access_key and creds.jwt:
            pub = self._verified_pub(creds.jwt, playback_id, row.tenant)
        _check_origin(policy, creds)
        if kind == "public":
            return Grant(gated)
        if kind == "jwt":
            if pub is None:
                raise _missing(
                    creds,
                    "Content is gated and requires a public key",
                    "send a playback JWT in the jwt query parameter or the Livepeer-Jwt header",
                    "an accessKey was sent (read before any jwt), but this asset's "
                    "playbackPolicy is jwt",
                )
            await self._check_signing_key(pub, row)
            return Grant(gated)
        if kind == "webhook":
            if not creds.access_key:
                raise _missing(
                    creds,
                    "Content is gated and requires an access key",
                    "send it in the accessKey query parameter or the Livepeer-Access-Key header",
                    "a jwt was sent, but this asset's playbackPolicy is webhook",
                )
            await self._ask_gate(row, policy, creds.access_key)
            return Grant(gated)
        raise BadRequest(f"unknown playbackPolicy type: {kind}")

    # -- JWT --------------------------------------------------------------------------------

    def _verified_pub(self, token: str, playback_id: str, tenant: str) -> str:
        """The `pub` claim of a token the CDN accepts for this playback id; 403 if not."""
        import jwt  # here, not at the top: PyJWT + cryptography cost ~60 ms of the start

        try:
            unverified = jwt.api_jws.decode_complete(token, options={"verify_signature": False})
            claims = json.loads(unverified["payload"])
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Forbidden(f"invalid jwt: it is not a JSON Web Token ({exc})") from None
        if not isinstance(claims, dict):
            raise Forbidden("invalid jwt: its payload is not a JSON object")
        alg = unverified["header"].get("alg")
        if alg not in JWT_ALGORITHMS:
            raise Forbidden(f"invalid jwt: alg must be ES256, not {json.dumps(alg)}")
        pub = claims.get("pub")
        if not isinstance(pub, str) or not pub:
            raise Forbidden("invalid jwt: missing pub claim (a signing key's publicKey)")
        key = _public_key(pub)
        try:
            jwt.api_jws.decode_complete(token, key=key, algorithms=JWT_ALGORITHMS)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Forbidden(
                "invalid jwt: its signature does not verify with the public key in its pub "
                "claim (sign it with that key's privateKey)"
            ) from None
        self._check_times(claims, tenant)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Forbidden("invalid jwt: missing sub claim (the playback id)")
        if sub != playback_id:
            raise Forbidden(f"invalid jwt: it is for playback id {sub}, not {playback_id}")
        return pub

    def _check_times(self, claims: Doc, tenant: str) -> None:
        """exp (required, in the future, at most 7 days ahead), iat and nbf (not in the
        future), in seconds, against the asset owner's clock."""
        now_ms = self._scheduler.now_ms(tenant)
        # A token signed with the machine's own time is not "issued in the future" just
        # because manual time stands still behind it: iat/nbf may be up to the wall clock.
        latest_ms = max(now_ms, SystemClock().now_ms())
        for name in ("exp", "iat", "nbf"):
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not _is_number(value)):
                raise Forbidden(f"invalid jwt: {name} must be a number of seconds")
        exp = claims.get("exp")
        if exp is None:
            raise Forbidden("invalid jwt: missing exp claim")
        if now_ms >= exp * 1000:
            raise Forbidden(
                f"invalid jwt: it expired at {_iso(exp * 1000)} (exp); the emulator's clock "
                f"reads {_iso(now_ms)}"
            )
        if exp * 1000 - now_ms > MAX_EXP_AHEAD_SECONDS * 1000:
            raise Forbidden("invalid jwt: exp claim too far in the future (more than 7 days)")
        for name in ("iat", "nbf"):
            value = claims.get(name)
            if value is not None and latest_ms < value * 1000:
                raise Forbidden(
                    f"invalid jwt: its {name} ({_iso(value * 1000)}) is in the future; the "
                    f"emulator's clock reads {_iso(now_ms)}"
                )

    async def _check_signing_key(self, pub: str, asset: AssetRow) -> None:
        keys = await self._keys.by_public_key(pub)
        if not keys:
            raise Forbidden("Content is gated and corresponding public key not found")
        if len(keys) > 1:
            raise BadRequest("Multiple signing keys found for the same public key.")
        key = keys[0]
        if key.tenant != asset.tenant:
            # Studio's gate answers 404 "Content not found" here; the player is refused.
            raise Forbidden(
                "Content not found: the token's signing key belongs to another account than "
                "the asset"
            )
        if key.doc.get("disabled") or key.deleted:
            raise Forbidden("The public key is disabled or deleted")
        await self._keys.note_seen(key)

    # -- the webhook gate -------------------------------------------------------------------

    async def _ask_gate(self, asset: AssetRow, policy: Doc, access_key: str) -> None:
        """Studio's fireGateWebhook, its answer cached for refreshInterval seconds."""
        context = json.dumps(policy.get("webhookContext"), sort_keys=True)
        key = (asset.doc["playbackId"], access_key, str(policy.get("webhookId")), context)
        now = self._scheduler.now_ms(asset.tenant)
        cached = self._answers.get(key)
        if cached is not None and cached.expires_ms > now:
            answer = cached
        else:
            task = self._asking.get(key)
            if task is None:
                # One call for every request that needs it meanwhile (a player fetches
                # several segments at once); it finishes even if they go away.
                task = asyncio.ensure_future(self._fire(asset, policy, access_key))
                self._asking[key] = task
                task.add_done_callback(lambda _: self._asking.pop(key, None))
            answer = await asyncio.shield(task)
            if answer.cache:
                self._answers[key] = answer
                self._answers.move_to_end(key)
                while len(self._answers) > CACHE_ENTRIES:
                    self._answers.popitem(last=False)
        if answer.error is not None:
            raise answer.error

    async def _fire(self, asset: AssetRow, policy: Doc, access_key: str) -> _Answer:
        tenant = asset.tenant
        timestamp = self._scheduler.now_ms(tenant)
        refresh = policy.get("refreshInterval")
        seconds: float = DEFAULT_REFRESH_SECONDS
        if _is_number(refresh) and refresh > 0:
            seconds = refresh
        expires = timestamp + int(seconds * 1000)
        # Studio reads the webhook whether or not it was deleted since (db.webhook.get).
        hook = await self._store.get_webhook(str(policy.get("webhookId")))
        if hook is None:
            missing = InternalServerError("Content is gated and corresponding webhook not found")
            return _Answer(missing, tenant, expires, cache=False)
        body: Doc = {}
        if policy.get("webhookContext") is not None:  # JSON.stringify drops undefined
            body["context"] = policy["webhookContext"]
        body.update(accessKey=access_key, timestamp=timestamp)
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = {"content-type": "application/json", "user-agent": USER_AGENT}
        secret = hook.doc.get("sharedSecret")
        if secret:
            headers["Livepeer-Signature"] = f"t={timestamp},v1={sign(raw, secret)}"
        status, answered, failure = 0, "", ""
        try:
            # Bounded twice: aiohttp's total timeout, and an outer one in case a peer
            # trickles its body (a hanging gate never holds a media request longer).
            status, answered = await real_timeout(
                self._post(hook.doc["url"], raw, headers), self._timeout + 1
            )
        except asyncio.TimeoutError:
            failure = f"timed out after {self._timeout:g} s"
        except (aiohttp.ClientError, ValueError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if 200 <= status < 300:
            status = _body_status(answered) or status
        await self._note_status(hook.doc["id"], timestamp, status, failure, answered)
        if status == 0:
            failed = BadGateway(f"Content is gated and corresponding webhook failed: {failure}")
            return _Answer(failed, tenant, expires, cache=False)
        if 200 <= status < 300:
            return _Answer(None, tenant, expires, cache=True)
        denied = Forbidden(
            f"Content is gated and corresponding webhook failed: it answered {status}"
        )
        return _Answer(denied, tenant, expires, cache=True)

    async def _post(self, url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
        assert self._session is not None, "the playback gate is not started"
        async with self._session.post(
            url,
            data=raw,
            headers=headers,
            allow_redirects=True,
            max_redirects=GATE_REDIRECTS,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        ) as resp:
            text = (await resp.content.read(ANSWER_BYTES)).decode("utf-8", "replace")
            return resp.status, text

    async def _note_status(
        self, webhook_id: str, timestamp: int, status: int, failure: str, answered: str
    ) -> None:
        """Studio's storeTriggerStatus: the webhook's `status.lastTriggeredAt`, and its
        `lastFailure` for anything but a 2xx."""
        note: Doc = {"lastTriggeredAt": timestamp}
        if status >= 300 or not status:
            failure_doc = {
                "timestamp": timestamp,
                "error": failure or f"receiver answered {status}",
                "statusCode": status or None,
                "response": answered or None,
            }
            note["lastFailure"] = {k: v for k, v in failure_doc.items() if v is not None}
        await self._store.note_webhook_status(webhook_id, note)


def _missing(creds: Credentials, studio: str, how: str, other: str) -> ApiError:
    """No credentials at all: 401 and how to send them; the other kind: 403."""
    if creds.jwt is None and creds.access_key is None:
        return Unauthorized(f"{studio}: {how}")
    return Forbidden(f"{studio}: {other}")


def _check_origin(policy: Doc, creds: Credentials) -> None:
    """The gate's allowedOrigins check, as Studio makes it: only when an Origin header was
    sent; "null" or empty falls back to the Referer; decoded, one trailing slash off."""
    allowed = policy.get("allowedOrigins") or []
    origin = creds.origin
    if origin is None or not allowed or "*" in allowed:
        return
    if origin in ("null", ""):
        # JavaScript's decodeURIComponent(undefined) is the text "undefined".
        origin = creds.referer if creds.referer is not None else "undefined"
    origin = re.sub(r"/$", "", unquote(origin))
    if origin not in allowed:
        raise Forbidden(
            f"Content is gated and origin not in allowed origins: {origin} is not one of "
            f"the playbackPolicy's allowedOrigins"
        )


def _public_key(pub: str) -> ec.EllipticCurvePublicKey:
    """The key a `pub` claim names: base64 (strict, as Go's StdEncoding) of a PEM EC key."""
    # Here, not at the top: cryptography costs tens of ms of the server's start.
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        pem = base64.b64decode(pub, validate=True)  # binascii.Error is a ValueError
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Forbidden(
            "invalid jwt: its pub claim is not a base64-encoded PEM EC public key (a "
            "signing key's publicKey, as Studio gives it)"
        )
    return key


def _body_status(text: str) -> int | None:
    """checkRespBody: a 2xx whose JSON body has a truthy `ret` takes that as its status
    (a gate may deny with a 200); a `ret` that is not a status denies."""
    try:
        body = json.loads(text) if text else None
    except ValueError:
        return None
    ret = body.get("ret") if isinstance(body, dict) else None
    if not ret:
        return None
    if _is_number(ret) and 100 <= ret < 600:
        return int(ret)
    return 403  # JavaScript compares a string or `true` with 200 and 300: never a 2xx


def _is_number(value: Any) -> TypeGuard[float]:
    """A finite JSON number (Python's json also reads NaN and Infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _iso(ms: float) -> str:
    try:
        stamp = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{ms / 1000:g} s"
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def carry_credentials(text: str, suffix: str, params: list[tuple[str, str]]) -> str:
    """A playlist (.m3u8) or thumbnails track (.vtt) whose URLs carry `params` (the
    `jwt`/`accessKey` it was fetched with): relative URLs do not inherit a query, so
    without this a player given only `…/index.m3u8?jwt=…` could not fetch the rest."""
    query = urlencode(params)

    def carried(uri: str) -> str:
        if not uri or uri.startswith("data:"):
            return uri
        base, hash_mark, fragment = uri.partition("#")
        return f"{base}{'&' if '?' in base else '?'}{query}{hash_mark}{fragment}"

    lines = text.split("\n")
    if suffix == ".m3u8":
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                lines[i] = carried(stripped)
            elif stripped.startswith("#EXT") and 'URI="' in stripped:
                lines[i] = re.sub(r'URI="([^"]*)"', lambda m: f'URI="{carried(m.group(1))}"', line)
    elif suffix == ".vtt":
        for i in range(1, len(lines)):
            if "-->" in lines[i - 1] and lines[i].strip():
                lines[i] = carried(lines[i].strip())
    return "\n".join(lines)
