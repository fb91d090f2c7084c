"""Errors as values: the service raises these; one middleware turns them into Studio's body.

Each class carries Studio's status code; the message is Studio's text for that case.
"""

from __future__ import annotations


class ApiError(Exception):
    status = 500

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        # The body's whole `errors` list: one message, except Ajv's oneOf failures.
        self.messages = messages or [message]


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class UnprocessableEntity(ApiError):
    status = 422


class TooManyRequests(ApiError):
    status = 429


class InternalServerError(ApiError):
    status = 500


class BadGateway(ApiError):
    """A peer Studio calls did not answer (the access-control gate's webhook)."""

    status = 502


class InsufficientStorage(ApiError):
    """The data dir's disk is full. Studio has no such answer (its storage does not fill
    up); 507 says what happened, and DELETE keeps working so space can be freed."""

    status = 507


STORAGE_FULL_MESSAGE = (
    "insufficient storage: the emulator's data dir is full; delete assets or free disk space"
)


class ConfigError(Exception):
    """A setting or a file the server was given cannot be used; the CLI prints it and exits."""
