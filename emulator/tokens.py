"""Signed upload tokens: HS256 JWTs naming the asset's playbackId, as Studio issues them.

The secret is created once per data dir and kept in the database, so upload URLs handed
out before a restart keep working after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json


class InvalidToken(Exception):
    """The message mirrors the jsonwebtoken library's wording, which Studio passes through."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UploadTokens:
    AUDIENCE = "livepeer-emulator"

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, playback_id: str) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        claims = {"playbackId": playback_id, "aud": self.AUDIENCE}
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{header}.{payload}.{self._sign(header, payload)}"

    def verify(self, token: str | None) -> str:
        """Return the playbackId the token names, or raise InvalidToken."""
        if not token:
            raise InvalidToken("jwt must be provided")
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("jwt malformed")
        header, payload, signature = parts
        if not token.isascii():  # never one we issued; compare_digest refuses non-ASCII str
            raise InvalidToken("invalid token")
        if not hmac.compare_digest(self._sign(header, payload), signature):
            raise InvalidToken("invalid signature")
        try:
            claims = json.loads(_unb64(payload))
        except ValueError as exc:
            raise InvalidToken("invalid token") from exc
        if not isinstance(claims, dict) or not isinstance(claims.get("playbackId"), str):
            raise InvalidToken("invalid token")
        if claims.get("aud") != self.AUDIENCE:
            raise InvalidToken(f"jwt audience invalid. expected: {self.AUDIENCE}")
        return str(claims["playbackId"])

    def _sign(self, header: str, payload: str) -> str:
        mac = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256)
        return _b64(mac.digest())
