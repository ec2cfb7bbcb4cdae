"""The OpenAI error shape, `{"error": {"message", "type", "param", "code"}}`, and what the
server's answers become: a missing or wrong key 401, a full server 429 with Retry-After, a
server that is away or stopping 503, anything else it says 502."""

from __future__ import annotations

from dataclasses import dataclass

from livetranslate.client.connection import ClientError, Unreachable
from livetranslate.protocol import RETRY_ELSEWHERE, Event, EventKind

# what a refused caller is told to wait before trying again (a stream of a file takes a
# while; one of the server's places is rarely free sooner)
RETRY_AFTER_S = 10


@dataclass
class ApiError(Exception):
    """An answer other than 200, in OpenAI's shape. `retry_after_s`: the Retry-After header."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    retry_after_s: int | None = None

    def __post_init__(self):
        super().__init__(self.message)

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)} if self.retry_after_s is not None else {}


def bad_request(message: str, code: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, code=code, param=param)


def too_large(limit_bytes: int) -> ApiError:
    return ApiError(
        413,
        f"the upload is larger than this gateway takes ({limit_bytes / 2**20:g} MB)",
        code="file_too_large",
        param="file",
    )


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, code="invalid_api_key")


# Phrases of the server's refusals (livetranslate.pipeline.guards, .dispatch; the client's
# plain words for Triton's own), in the order they are looked for.
_KEY = ("needs a client key", "needs an api key", "another client key")
_FULL = ("server full", "already has", "overloaded")
_AWAY = ("shutting down", "still starting", "stopped or restarted", "reconnect in a moment")


def from_message(message: str, passing: bool = False) -> ApiError:
    """What the server (or the client library, for it) said, as the HTTP error it is.
    `passing`: the server marked it as a refusal for now (an `end` whose text says to retry)."""
    lowered = message.lower()
    if any(phrase in lowered for phrase in _KEY):
        # the caller's own key is what to fix: say so in the caller's terms
        return unauthorized(
            "the server refused the key: send a client key of the livetranslate server as "
            "`Authorization: Bearer KEY`" + (f" ({message})" if "client '" in message else "")
        )
    if "its key allows none" in lowered:
        return ApiError(403, message, type="permission_error", code="permission_denied")
    if any(phrase in lowered for phrase in _FULL):
        return ApiError(429, message, type="rate_limit_error", code="rate_limit_exceeded", retry_after_s=RETRY_AFTER_S)
    if any(phrase in lowered for phrase in _AWAY) or passing:
        return ApiError(503, message, type="server_error", code="server_unavailable", retry_after_s=RETRY_AFTER_S)
    return ApiError(502, f"the livetranslate server: {message}", type="server_error", code="upstream_error")


def from_client_error(exc: ClientError) -> ApiError:
    if isinstance(exc, Unreachable):
        return ApiError(503, str(exc), type="server_error", code="server_unavailable", retry_after_s=RETRY_AFTER_S)
    return from_message(str(exc))


def from_end(event: Event) -> ApiError | None:
    """The error an `end` event carries, None for a stream that ended well."""
    if event.kind != EventKind.END or not event.error:
        return None
    return from_message(event.error, passing=event.text == RETRY_ELSEWHERE)
