"""Playback policies enforced on every media URL: JWT (signing keys), the webhook gate and
allowedOrigins. Tokens are made here with PyJWT, as an app's backend makes them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import SAMPLE_MP4
from tests.helpers import advance, get_json, path_of

KEYS = "/api/access-control/signing-key"
APP = "https://app.example.test"


# -- helpers ---------------------------------------------------------------------------------


async def _asset(client: TestClient, auth: dict[str, str], policy: Any) -> dict[str, Any]:
    """A ready asset (real outputs) with this playbackPolicy."""
    body: dict[str, Any] = {"name": "clip"}
    if policy is not None:
        body["playbackPolicy"] = policy
    resp = await client.post("/api/asset/request-upload", json=body, headers=auth)
    assert resp.status == 200, await resp.text()
    created = await resp.json()
    put = await client.put(path_of(created["url"]), data=SAMPLE_MP4.read_bytes())
    assert put.status == 200, await put.text()
    await advance(client, auth, 10)
    asset: dict[str, Any] = await get_json(client, f"/api/asset/{created['asset']['id']}", auth)
    assert asset["status"]["phase"] == "ready", asset["status"]
    # The rendition's name (`240p0`), from its MP4 in playback info (which is not gated).
    info = await get_json(client, f"/api/playback/{asset['playbackId']}", auth)
    mp4 = next(s["url"] for s in info["meta"]["source"] if s["hrn"] == "MP4")
    asset["_rendition"] = mp4.rsplit("/static", 1)[1].removesuffix(".mp4")
    return asset


def _media_paths(asset: dict[str, Any]) -> list[str]:
    """Every media URL of the asset: master and variant playlists, a segment, the MP4,
    the thumbnails track and a thumbnail, and the download URL."""
    base = f"/hls/{asset['playbackId']}"
    return [
        f"{base}/index.m3u8",
        f"{base}/{_variant(asset)}/index.m3u8",
        f"{base}/{_variant(asset)}/0.ts",
        f"{base}/static{_variant(asset)}.mp4",
        f"{base}/thumbnails/thumbnails.vtt",
        f"{base}/thumbnails/keyframes_0.jpg",
        path_of(asset["downloadUrl"]),
        f"/asset/{asset['playbackId']}/video",
    ]


def _variant(asset: dict[str, Any]) -> str:
    return str(asset["_rendition"])


async def _key(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    resp = await client.post(KEYS, json={}, headers=auth)
    assert resp.status == 201, await resp.text()
    key: dict[str, Any] = await resp.json()
    return key


async def _now_s(client: TestClient, auth: dict[str, str]) -> int:
    return int((await get_json(client, "/_emulator/clock", auth))["now"]) // 1000


def _sign(key: dict[str, Any], claims: dict[str, Any]) -> str:
    return jwt.encode(claims, base64.b64decode(key["privateKey"]), algorithm="ES256")


def _claims(key: dict[str, Any], playback_id: str, now_s: int, **more: Any) -> dict[str, Any]:
    """What @livepeer/core's signAccessJwt puts in a token."""
    claims = {
        "sub": playback_id,
        "pub": key["publicKey"],
        "action": "pull",
        "video": "none",
        "iss": "https://app.example.test",
        "iat": now_s,
        "exp": now_s + 3600,
        **more,
    }
    return {k: v for k, v in claims.items() if v is not None}


async def _status(client: TestClient, path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await client.get(path, **kwargs)
    body = await resp.read()
    return resp.status, (json.loads(body) if resp.content_type == "application/json" else body)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _without(claims: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != name}


def _forged(header: dict[str, Any], claims: Any, secret: bytes | None) -> str:
    """A token put together by hand: `alg: none` (no signature) or HS256 with `secret`."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.digest(secret, signing_input.encode(), "sha256")
    return f"{signing_input}.{_b64url(signature)}"


# -- JWT -------------------------------------------------------------------------------------


async def test_a_jwt_asset_refuses_every_url_without_a_token(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _asset(client, auth, {"type": "jwt"})
    for path in _media_paths(asset):
        for method in ("GET", "HEAD"):
            resp = await client.request(method, path, headers={"Range": "bytes=0-99"})
            assert resp.status == 401, (method, path, resp.status)
            if method == "GET":
                (message,) = (await resp.json())["errors"]
                assert message.startswith("Content is gated and requires a public key: ")
                assert "jwt query parameter or the Livepeer-Jwt header" in message
        # Nor can a cached copy be revalidated into a 304.
        resp = await client.get(path, headers={"If-None-Match": "*"})
        assert resp.status == 401, path
    # Playback info is not gated (as in Studio): it tells the player what the policy is.
    info = await get_json(client, f"/api/playback/{asset['playbackId']}", auth)
    assert info["meta"]["playbackPolicy"] == {"type": "jwt"}


async def test_a_valid_jwt_plays_every_url_and_playlists_carry_it(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _asset(client, auth, {"type": "jwt"})
    pid = asset["playbackId"]
    key = await _key(client, auth)
    token = _sign(key, _claims(key, pid, await _now_s(client, auth)))
    for path in _media_paths(asset):
        resp = await client.get(path, params={"jwt": token})
        assert resp.status == 200, (path, await resp.text())
        assert "public" not in resp.headers.get("Cache-Control", "private"), path
        ranged = await client.get(path, params={"jwt": token}, headers={"Range": "bytes=0-9"})
        assert ranged.status in (200, 206), path  # tokenised playlists are answered whole
        head = await client.head(path, headers={"Livepeer-Jwt": token})
        assert head.status == 200, path
    segment = f"/hls/{pid}/{_variant(asset)}/0.ts"
    ranged = await client.get(segment, params={"jwt": token}, headers={"Range": "bytes=0-187"})
    assert ranged.status == 206 and len(await ranged.read()) == 188

    # The master playlist, fetched with ?jwt=, hands the token on to its variants, and
    # they to their segments: a player given only the tokenised URL plays it all.
    master = await (await client.get(f"/hls/{pid}/index.m3u8", params={"jwt": token})).text()
    uris = [line for line in master.splitlines() if line and not line.startswith("#")]
    assert uris and all(uri.endswith(f"/index.m3u8?jwt={token}") for uri in uris), master
    variant = await (await client.get(f"/hls/{pid}/{uris[0]}")).text()
    segments = [line for line in variant.splitlines() if line and not line.startswith("#")]
    assert segments and all(s.endswith(f".ts?jwt={token}") for s in segments), variant
    folder = uris[0].split("/")[0]
    assert (await client.get(f"/hls/{pid}/{folder}/{segments[0]}")).status == 200
    vtt = await (await client.get(f"/hls/{pid}/thumbnails/thumbnails.vtt?jwt={token}")).text()
    cues = [line for line in vtt.splitlines() if ".jpg" in line]
    assert cues and all(c.endswith(f".jpg?jwt={token}") for c in cues), vtt
    # With the header instead, the player sends it on each request: nothing to rewrite.
    plain = await client.get(f"/hls/{pid}/index.m3u8", headers={"Livepeer-Jwt": token})
    assert "jwt=" not in await plain.text()
    # A tokenised playlist still revalidates.
    first = await client.get(f"/hls/{pid}/index.m3u8", params={"jwt": token})
    again = await client.get(
        f"/hls/{pid}/index.m3u8",
        params={"jwt": token},
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert again.status == 304
    # The key's use is recorded, as Studio's lastSeen.
    seen = await get_json(client, f"{KEYS}/{key['id']}", auth)
    assert seen["lastSeen"] == await _now_s(client, auth) * 1000


async def test_a_token_expires_on_the_emulators_clock(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _asset(client, auth, {"type": "jwt"})
    key = await _key(client, auth)
    now = await _now_s(client, auth)
    token = _sign(key, _claims(key, asset["playbackId"], now, exp=now + 60))
    url = f"/hls/{asset['playbackId']}/index.m3u8?jwt={token}"
    assert (await client.get(url)).status == 200
    await advance(client, auth, 59)
    assert (await client.get(url)).status == 200
    await advance(client, auth, 1)
    status, body = await _status(client, url)
    assert status == 403
    assert body["errors"][0].startswith("invalid jwt: it expired at ")


def _bad_tokens(key: dict[str, Any], other_key: dict[str, Any], pid: str, now: int) -> Any:
    """(name, token, expected reason's start) for tokens the CDN refuses."""
    good = _claims(key, pid, now)
    public_pem = base64.b64decode(key["publicKey"])
    stranger = ec.generate_private_key(ec.SECP256R1())
    stranger_pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    not_a_key = base64.b64encode(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    return [
        ("empty", "", None),  # an empty ?jwt= is no token at all: 401
        ("not a jwt", "not-a-token", "invalid jwt: it is not a JSON Web Token"),
        ("three dots", "a.b.c", "invalid jwt: it is not a JSON Web Token"),
        ("payload not json", f"{_b64url(b'{}')}.{_b64url(b'[')}.x", "invalid jwt: it is not"),
        ("payload a list", _forged({"alg": "ES256"}, [], None), "invalid jwt: its payload"),
        ("alg none", _forged({"alg": "none", "typ": "JWT"}, good, None), "invalid jwt: alg"),
        (
            "HS256 keyed by the public key's PEM",
            _forged({"alg": "HS256", "typ": "JWT"}, good, public_pem),
            "invalid jwt: alg must be ES256",
        ),
        (
            "HS256 keyed by the base64 publicKey",
            _forged({"alg": "HS256", "typ": "JWT"}, good, key["publicKey"].encode()),
            "invalid jwt: alg must be ES256",
        ),
        (
            "signed by another key, naming ours",
            jwt.encode(good, stranger_pem, algorithm="ES256"),
            "invalid jwt: its signature does not verify",
        ),
        (
            "another token's signature",
            _sign(key, good).rsplit(".", 1)[0] + "." + _sign(key, {**good, "x": 1}).split(".")[2],
            "invalid jwt: its signature does not verify",
        ),
        ("no pub", _sign(key, _without(good, "pub")), "invalid jwt: missing pub"),
        ("pub not base64", _sign(key, {**good, "pub": "%%%"}), "invalid jwt: its pub claim"),
        ("pub not a key", _sign(key, {**good, "pub": not_a_key.decode()}), "invalid jwt: its pub"),
        ("no exp", _sign(key, _without(good, "exp")), "invalid jwt: missing exp"),
        ("exp a string", _sign(key, {**good, "exp": str(now + 60)}), "invalid jwt: exp must be"),
        ("expired", _sign(key, {**good, "exp": now - 1}), "invalid jwt: it expired at"),
        ("exp too far", _sign(key, {**good, "exp": now + 8 * 86400}), "invalid jwt: exp claim"),
        ("nbf ahead", _sign(key, {**good, "nbf": int(time.time()) + 3600}), "invalid jwt: its nbf"),
        ("no sub", _sign(key, _without(good, "sub")), "invalid jwt: missing sub"),
        (
            "another playback id",
            _sign(key, {**good, "sub": "abcd1234abcd1234"}),
            "invalid jwt: it is for playback id abcd1234abcd1234",
        ),
        (
            "a key no account has",
            jwt.encode(
                {
                    **good,
                    "pub": base64.b64encode(
                        stranger.public_key().public_bytes(
                            serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo,
                        )
                    ).decode(),
                },
                stranger_pem,
                algorithm="ES256",
            ),
            "Content is gated and corresponding public key not found",
        ),
        (
            "another tenant's key",
            _sign(other_key, _claims(other_key, pid, now)),
            "Content not found: the token's signing key belongs to another account",
        ),
    ]  # fmt: skip


async def test_bad_tokens_are_refused_with_a_reason_on_every_url(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _asset(client, auth, {"type": "jwt"})
    pid = asset["playbackId"]
    key = await _key(client, auth)
    other_key = await _key(client, {"Authorization": f"Bearer other-{uuid.uuid4()}"})
    now = await _now_s(client, auth)
    for name, token, reason in _bad_tokens(key, other_key, pid, now):
        for path in _media_paths(asset):
            for how in ("query", "header"):
                kwargs: dict[str, Any] = (
                    {"params": {"jwt": token}}
                    if how == "query"
                    else {"headers": {"Livepeer-Jwt": token}}
                )
                status, body = await _status(client, path, **kwargs)
                expected = 401 if reason is None else 403
                assert status == expected, (name, path, how, status, body)
                message = body["errors"][0]
                assert reason is None or message.startswith(reason), (name, message)


async def test_disabled_and_deleted_keys_stop_their_tokens_at_once(
    client: TestClient, auth: dict[str, str]
) -> None:
    asset = await _asset(client, auth, {"type": "jwt"})
    key = await _key(client, auth)
    token = _sign(key, _claims(key, asset["playbackId"], await _now_s(client, auth)))
    url = f"/hls/{asset['playbackId']}/index.m3u8?jwt={token}"
    assert (await client.get(url)).status == 200
    resp = await client.patch(f"{KEYS}/{key['id']}", json={"disabled": True}, headers=auth)
    assert resp.status == 204
    assert await _status(client, url) == (
        403,
        {"errors": ["The public key is disabled or deleted"]},
    )
    await client.patch(f"{KEYS}/{key['id']}", json={"disabled": False}, headers=auth)
    assert (await client.get(url)).status == 200
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=auth)).status == 204
    assert (await _status(client, url))[0] == 403
    # A tenant's reset takes its keys with it.
    key2 = await _key(client, auth)
    token2 = _sign(key2, _claims(key2, asset["playbackId"], await _now_s(client, auth)))
    assert (await client.post("/_emulator/reset", json={}, headers=auth)).status == 200
    assert (await client.get(f"/hls/{asset['playbackId']}/index.m3u8?jwt={token2}")).status == 404


async def test_an_access_key_is_read_before_a_jwt(client: TestClient, auth: dict[str, str]) -> None:
    asset = await _asset(client, auth, {"type": "jwt"})
    key = await _key(client, auth)
    token = _sign(key, _claims(key, asset["playbackId"], await _now_s(client, auth)))
    status, body = await _status(
        client, f"/hls/{asset['playbackId']}/index.m3u8", params={"jwt": token, "accessKey": "k"}
    )
    assert status == 403
    assert body["errors"][0].startswith("Content is gated and requires a public key: an accessKey")


async def test_public_assets_play_without_a_token_but_not_with_a_bad_one(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Livepeer's CDN checks any JWT it is given, whatever the policy."""
    for policy in (None, {"type": "public"}):
        asset = await _asset(client, auth, policy)
        for path in _media_paths(asset):
            resp = await client.get(path)
            assert resp.status == 200, path
            assert "private" not in resp.headers.get("Cache-Control", ""), path
        url = f"/hls/{asset['playbackId']}/index.m3u8"
        status, body = await _status(client, url, params={"jwt": "garbage"})
        assert status == 403 and body["errors"][0].startswith("invalid jwt"), body
        assert (await client.get(url, params={"accessKey": "anything"})).status == 200


async def test_unknown_playback_ids_still_answer_404(client: TestClient) -> None:
    assert await _status(client, "/hls/nope/index.m3u8", params={"jwt": "x"}) == (
        404,
        {"errors": ["not found"]},
    )


# -- allowedOrigins --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),  # no Origin (curl, a same-origin <video>): not checked
        ({"Origin": APP}, True),
        ({"Origin": APP + "/"}, True),  # one trailing slash is dropped
        ({"Origin": "https://evil.example.test"}, False),
        ({"Origin": "null", "Referer": APP}, True),  # "null" falls back to the Referer
        ({"Origin": "null", "Referer": APP + "/page.html"}, False),  # ... as a whole URL
        ({"Origin": "null"}, False),  # ... and without one, JavaScript's "undefined"
        ({"Origin": "https%3A%2F%2Fapp.example.test"}, True),  # decodeURIComponent
    ],
)
async def test_allowed_origins_restrict_who_plays(
    client: TestClient, auth: dict[str, str], headers: dict[str, str], allowed: bool
) -> None:
    asset = await _asset(client, auth, {"type": "public", "allowedOrigins": [APP]})
    for path in _media_paths(asset):
        status, body = await _status(client, path, headers=headers)
        if allowed:
            assert status == 200, (path, body)
        else:
            assert status == 403, (path, status)
            assert body["errors"][0].startswith(
                "Content is gated and origin not in allowed origins"
            ), body


async def test_allowed_origins_star_and_jwt_together(
    client: TestClient, auth: dict[str, str]
) -> None:
    star = await _asset(client, auth, {"type": "public", "allowedOrigins": ["*"]})
    assert (
        await client.get(_media_paths(star)[0], headers={"Origin": "https://x.test"})
    ).status == 200
    gated = await _asset(client, auth, {"type": "jwt", "allowedOrigins": [APP]})
    key = await _key(client, auth)
    token = _sign(key, _claims(key, gated["playbackId"], await _now_s(client, auth)))
    url = f"{_media_paths(gated)[0]}?jwt={token}"
    assert (await client.get(url, headers={"Origin": APP})).status == 200
    resp = await client.get(url, headers={"Origin": "https://x.test"})
    assert resp.status == 403
    # Refusals carry CORS headers, so a page sees the status instead of a network error.
    assert resp.headers["Access-Control-Allow-Origin"] == "https://x.test"


# -- the webhook gate ------------------------------------------------------------------------


class Gate:
    """An access-control webhook receiver: records each call, answers as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.body = b""
        self.hang = False

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        if self.hang:
            await asyncio.Event().wait()  # never answers; cancelled when the server stops
        return web.Response(status=self.status, body=self.body)


async def _gate(aiohttp_server: Any) -> tuple[Gate, str]:
    gate = Gate()
    app = web.Application()
    app.router.add_post("/gate", gate.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return gate, f"http://127.0.0.1:{server.port}/gate"


async def _webhook(client: TestClient, auth: dict[str, str], url: str) -> dict[str, Any]:
    body = {"name": "gate", "url": url, "events": [], "sharedSecret": "s3cret"}
    resp = await client.post("/api/webhook", json=body, headers=auth)
    assert resp.status == 201, await resp.text()
    hook: dict[str, Any] = await resp.json()
    return hook


async def test_the_webhook_gate_decides_and_is_cached(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    gate, url = await _gate(aiohttp_server)
    hook = await _webhook(client, auth, url)
    context = {"assetId": "a1", "userId": "u1"}
    policy = {"type": "webhook", "webhookId": hook["id"], "webhookContext": context}
    asset = await _asset(client, auth, policy)
    pid = asset["playbackId"]
    master = f"/hls/{pid}/index.m3u8"

    status, body = await _status(client, master)
    assert status == 401
    assert body["errors"][0].startswith("Content is gated and requires an access key: ")
    assert gate.calls == []

    before = (await get_json(client, "/_emulator/clock", auth))["now"]
    for path in _media_paths(asset):
        resp = await client.get(path, params={"accessKey": "viewer-1"})
        assert resp.status == 200, (path, await resp.text())
    assert len(gate.calls) == 1  # one call, then the answer is cached
    headers, raw = gate.calls[0]
    payload = json.loads(raw)
    assert list(payload) == ["context", "accessKey", "timestamp"]
    assert payload == {"context": context, "accessKey": "viewer-1", "timestamp": before}
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "livepeer.studio"
    signature = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert headers["Livepeer-Signature"] == f"t={before},v1={signature}"
    # The tokenised playlist carries the access key on.
    text = await (await client.get(master, params={"accessKey": "viewer-1"})).text()
    assert all(
        line.endswith("?accessKey=viewer-1")
        for line in text.splitlines()
        if line[:1] != "#" and line
    ), text

    # The header works too, and each access key is asked about on its own.
    gate.status = 403
    status, body = await _status(client, master, headers={"Livepeer-Access-Key": "viewer-2"})
    assert (status, body) == (
        403,
        {"errors": ["Content is gated and corresponding webhook failed: it answered 403"]},
    )
    assert len(gate.calls) == 2
    # Still cached for viewer-1 until 120 s (the gate's max-age) have passed ...
    assert (await client.get(master, params={"accessKey": "viewer-1"})).status == 200
    await advance(client, auth, 120)
    # ... then asked again, and now refused.
    assert (await client.get(master, params={"accessKey": "viewer-1"})).status == 403
    assert len(gate.calls) == 3
    status_doc = (await get_json(client, f"/api/webhook/{hook['id']}", auth))["status"]
    assert status_doc["lastFailure"]["statusCode"] == 403


async def test_refresh_interval_sets_how_long_an_answer_holds(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    gate, url = await _gate(aiohttp_server)
    hook = await _webhook(client, auth, url)
    policy = {"type": "webhook", "webhookId": hook["id"], "refreshInterval": 10}
    asset = await _asset(client, auth, policy)
    master = f"/hls/{asset['playbackId']}/index.m3u8?accessKey=k"
    assert (await client.get(master)).status == 200
    payload = json.loads(gate.calls[0][1])
    assert "context" not in payload  # no webhookContext: JSON.stringify leaves it out
    gate.status = 401
    await advance(client, auth, 9)
    assert (await client.get(master)).status == 200
    await advance(client, auth, 1)
    assert (await client.get(master)).status == 403
    assert len(gate.calls) == 2


@pytest.mark.parametrize(
    ("answer", "allowed"),
    [
        (b"", True),
        (b"not json at all", True),  # a 2xx body that is not JSON is ignored
        (b'{"ok": true}', True),
        (b'{"ret": 200}', True),
        (b'{"ret": 403}', False),  # Studio's checkRespBody: a gate may deny with a 200
        (b'{"ret": "no"}', False),
        (b"\xff\xfe garbage bytes", True),
    ],
)
async def test_a_2xx_body_may_deny_with_ret(
    client: TestClient,
    auth: dict[str, str],
    aiohttp_server: Any,
    answer: bytes,
    allowed: bool,
) -> None:
    gate, url = await _gate(aiohttp_server)
    gate.body = answer
    hook = await _webhook(client, auth, url)
    asset = await _asset(client, auth, {"type": "webhook", "webhookId": hook["id"]})
    resp = await client.get(f"/asset/{asset['playbackId']}/video", params={"accessKey": "k"})
    assert resp.status == (200 if allowed else 403), await resp.text()


async def test_a_gate_that_cannot_be_reached_is_a_502_and_not_cached(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any, unused_tcp_port: int
) -> None:
    hook = await _webhook(client, auth, f"http://127.0.0.1:{unused_tcp_port}/gate")
    asset = await _asset(client, auth, {"type": "webhook", "webhookId": hook["id"]})
    master = f"/hls/{asset['playbackId']}/index.m3u8?accessKey=k"
    status, body = await _status(client, master)
    assert status == 502
    assert body["errors"][0].startswith("Content is gated and corresponding webhook failed: ")
    # Once the receiver is there, the next request asks again.
    gate, url = await _gate(aiohttp_server)
    resp = await client.patch(f"/api/webhook/{hook['id']}", json={"url": url}, headers=auth)
    assert resp.status == 204
    assert (await client.get(master)).status == 200
    assert len(gate.calls) == 1


async def test_a_hanging_gate_is_bounded(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    gate, url = await _gate(aiohttp_server)
    gate.hang = True
    hook = await _webhook(client, auth, url)
    asset = await _asset(client, auth, {"type": "webhook", "webhookId": hook["id"]})
    paths = [f"{p}?accessKey=k" for p in _media_paths(asset)[:3]]
    began = time.monotonic()
    answers = await asyncio.gather(*(_status(client, p) for p in paths))
    took = time.monotonic() - began
    assert all(status == 502 for status, _ in answers), answers
    assert "timed out after 2 s" in answers[0][1]["errors"][0]
    assert took < 10, took  # 2 s on the manual clock (Studio's 30 s on the real one)
    assert len(gate.calls) == 1  # the requests in flight together shared one call


async def test_a_gate_answering_garbage_is_a_502(client: TestClient, auth: dict[str, str]) -> None:
    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(junk, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        hook = await _webhook(client, auth, f"http://127.0.0.1:{port}/gate")
        asset = await _asset(client, auth, {"type": "webhook", "webhookId": hook["id"]})
        status, body = await _status(client, f"/asset/{asset['playbackId']}/video?accessKey=k")
        assert status == 502, body
        assert body["errors"][0].startswith("Content is gated and corresponding webhook failed")
    finally:
        server.close()
        await server.wait_closed()


async def test_a_jwt_is_not_an_access_key(
    client: TestClient, auth: dict[str, str], aiohttp_server: Any
) -> None:
    gate, url = await _gate(aiohttp_server)
    hook = await _webhook(client, auth, url)
    asset = await _asset(client, auth, {"type": "webhook", "webhookId": hook["id"]})
    key = await _key(client, auth)
    token = _sign(key, _claims(key, asset["playbackId"], await _now_s(client, auth)))
    status, body = await _status(client, f"/hls/{asset['playbackId']}/index.m3u8?jwt={token}")
    assert status == 403
    assert body["errors"][0].startswith("Content is gated and requires an access key: a jwt")
    assert gate.calls == []


def test_the_readme_shows_the_gated_playback_example_verbatim() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    section = readme.split("\n## Access control\n", 1)[1].split("\n## ", 1)[0]
    assert (root / "examples" / "pytest" / "test_gated_playback.py").read_text() in section


def test_the_handle_signs_playback_tokens(livepeer_emulator: Any) -> None:
    key = livepeer_emulator.signing_key()
    assert livepeer_emulator.signing_key() == key  # made once per handle
    public_pem = base64.b64decode(key["publicKey"])
    now = livepeer_emulator.now() // 1000
    token = livepeer_emulator.sign_playback_jwt("abcd1234abcd1234", expires_in=90)
    claims = jwt.decode(token, public_pem, algorithms=["ES256"], options={"verify_iat": False})
    assert claims == {
        "action": "pull",
        "iss": "livepeer-emulator",
        "pub": key["publicKey"],
        "sub": "abcd1234abcd1234",
        "video": "none",
        "iat": now,
        "exp": now + 90,
    }
    custom = livepeer_emulator.sign_playback_jwt(
        {"playbackId": "p1"}, iss=None, custom={"userId": "u1"}
    )
    decoded = jwt.decode(custom, public_pem, algorithms=["ES256"], options={"verify_iat": False})
    assert "iss" not in decoded and decoded["custom"] == {"userId": "u1"}
    assert decoded["sub"] == "p1"
