"""An OpenAI-compatible speech API in front of the server (`livetranslate gateway`): it does
its work through Triton's gRPC like any client, one stored session per request.

    app.py      the Starlette app: the routes, a request from upload to answer
    fields.py   a request's fields, checked (OpenAI's and the gateway's own)
    upload.py   the multipart upload, read to a file within its limit
    jobs.py     one request's gRPC stream, on a thread of its own, cancellable
    formats.py  events as json, text, srt, vtt, verbose_json and server-sent events
    live.py     /speak: the page to speak from, and its WebSocket (one speaker's stream)
    speaker.py  /speak's messages, and who may speak (a key, or a speaker link's token)
    errors.py   the OpenAI error shape, and what the server's refusals become
"""

from __future__ import annotations

from livetranslate.gateway.app import MODELS, GatewayConfig, create_app
from livetranslate.gateway.errors import ApiError

__all__ = ["MODELS", "ApiError", "GatewayConfig", "create_app"]
