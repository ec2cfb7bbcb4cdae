"""The Starlette app: `POST /v1/audio/transcriptions`, `POST /v1/audio/translations`,
`GET /v1/models`, and `/speak` (live.py). Each speech request is read to a private temporary folder (removed on every
way out), decoded, and streamed to the server as one session with the caller's key; the
answer comes when the session ends, or as server-sent events while it runs (`stream=true`).
A caller who goes away cancels its gRPC stream."""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from livetranslate.audio import AudioFileError, read_audio
from livetranslate.client import ClientError, Connection
from livetranslate.gateway import formats, live
from livetranslate.gateway.errors import ApiError, bad_request, from_client_error, from_end, unauthorized
from livetranslate.gateway.fields import SpeechRequest, speech_request
from livetranslate.gateway.jobs import Job
from livetranslate.gateway.upload import ClientGone, drain, read_form
from livetranslate.protocol import Event, EventKind, ProtocolError, SessionOptions

log = logging.getLogger("livetranslate.gateway")

MODELS = ("whisper-1", "livetranslate")  # what /v1/models lists; any name is accepted
SESSION_HEADER = "x-livetranslate-session"  # the stored session that holds the request's events


@dataclass(frozen=True)
class GatewayConfig:
    url: str  # the livetranslate server's gRPC address(es), as --url takes them
    tls: bool = False
    ca: str | None = None
    max_upload_bytes: int = 200 * 2**20
    upload_idle_s: float = 60.0  # an upload that sends nothing for this long is given up on
    accept_timeout_s: float = 40.0  # stream=true: how long the server may take to take the stream
    temp_dir: Path | None = None  # where uploads are written while they are read (default: the system's)
    # /speak (live.py): speaker links stream with the gateway's own key, checked with the dashboard's secret
    speaker_links: bool = False
    gateway_key: str | None = field(default=None, repr=False)
    speaker_secret: str | None = field(default=None, repr=False)
    dashboard_url: str | None = None  # the readers' captions link the page shows (None: none)


def bearer(request: Request) -> str | None:
    """The caller's key from `Authorization: Bearer KEY` (None without the header)."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise unauthorized("send the key as `Authorization: Bearer KEY`")
    if not all(" " <= c <= "~" for c in key):  # what a gRPC header may carry
        raise unauthorized("the key has characters no key has")
    return key


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


def create_app(config: GatewayConfig) -> Starlette:
    started = int(time.time())

    async def transcriptions(request: Request) -> Response:
        return await _speech(request, "transcribe", config)

    async def translations(request: Request) -> Response:
        return await _speech(request, "translate", config)

    def model(name: str) -> dict:
        return {"id": name, "object": "model", "created": started, "owned_by": "livetranslate"}

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [model(name) for name in MODELS]})

    async def one_model(request: Request) -> Response:
        return JSONResponse(model(request.path_params["model"]))

    return Starlette(
        routes=[
            Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
            Route("/v1/audio/translations", translations, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/models/{model:path}", one_model, methods=["GET"]),
            *live.routes(config),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    return error_response(ApiError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", code=kind))


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(
        ApiError(500, "the gateway failed; its log says why", type="server_error", code="internal_error")
    )


async def _speech(request: Request, task: str, config: GatewayConfig) -> Response:
    """A transcription or translation, from its upload to its answer."""
    try:
        key = bearer(request)
    except ApiError as error:
        await drain(request.receive)  # the client sends all before it reads: let it hear why
        return error_response(error)
    try:
        asked, pcm, rate = await _upload(request, task, config)
        options = _options(asked, rate)
        connection = Connection(config.url, tls=config.tls, ca=config.ca, api_key=key)
    except ApiError as error:
        return error_response(error)
    except ClientError as exc:  # an unusable --url (the command checks it at its start)
        return error_response(from_client_error(exc))
    except ClientGone:
        return Response(status_code=499)  # nobody reads it
    job = Job(connection, pcm, rate, options)
    duration_s = len(pcm) / rate
    del pcm  # the job holds the audio now
    job.start()
    if asked.stream:
        return await _streamed(job, asked, duration_s, config.accept_timeout_s)
    return await _whole(request, job, asked, duration_s)


async def _upload(request: Request, task: str, config: GatewayConfig) -> tuple[SpeechRequest, np.ndarray, int]:
    """The request's fields and its audio, decoded; the upload is gone when this returns."""
    with tempfile.TemporaryDirectory(prefix="livetranslate-gateway-", dir=config.temp_dir) as folder:
        form = await read_form(
            request.headers, request.receive, Path(folder), config.max_upload_bytes, config.upload_idle_s
        )
        asked = speech_request(form, task)
        assert form.file is not None  # speech_request checks it
        try:
            pcm, rate = await asyncio.to_thread(read_audio, form.file)
        except AudioFileError:
            raise bad_request(
                f"{form.filename or 'the file'} is not audio that ffmpeg or libsndfile can read",
                "invalid_file_format",
                "file",
            ) from None
    if pcm.size == 0:
        raise bad_request("the file holds no audio", "empty_file", "file")
    return asked, pcm, rate


def _options(asked: SpeechRequest, rate: int) -> SessionOptions:
    try:
        return SessionOptions(
            asked.session,
            rate,
            asked.language,
            asked.target or "en",
            translate=asked.task == "translate",
            partials=False,  # interim text is never part of an answer
            glossary=asked.glossary,
            store=asked.store,
        )
    except ProtocolError as exc:
        raise bad_request(str(exc), "invalid_value") from None


def _answer(asked: SpeechRequest, events: list[Event], duration_s: float) -> formats.Result:
    language = asked.language if asked.task == "transcribe" else asked.target
    return formats.result(events, asked.task, language, duration_s)


def _failure(item: Event | ClientError) -> ApiError | None:
    if isinstance(item, ClientError):
        return from_client_error(item)
    return from_end(item)


async def _whole(request: Request, job: Job, asked: SpeechRequest, duration_s: float) -> Response:
    """The answer once the session has ended; a caller who leaves first cancels it."""

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        job.cancel()

    watcher = asyncio.create_task(watch())
    events: list[Event] = []
    try:
        async for item in job.items():
            failure = _failure(item)
            if failure is not None:
                return error_response(failure)
            assert isinstance(item, Event)
            events.append(item)
    finally:
        watcher.cancel()
        job.cancel()  # nothing left to cancel when it ended
    made = _answer(asked, events, duration_s)
    if asked.task == "translate" and made.failed and not made.rows:
        errors = [e.error for e in events if e.kind == EventKind.TRANSLATION and e.error]
        return error_response(
            ApiError(502, f"the translation failed: {errors[0]}", type="server_error", code="translation_failed")
        )
    body, media_type = formats.render(made, asked.response_format, asked.words)
    return Response(body, media_type=media_type, headers=_headers(asked, made))


def _headers(asked: SpeechRequest, made: formats.Result) -> dict[str, str]:
    headers = {SESSION_HEADER: asked.session}
    if made.failed:  # sentences left out: their translation failed
        headers["x-livetranslate-failed-translations"] = str(made.failed)
    return headers


async def _streamed(job: Job, asked: SpeechRequest, duration_s: float, accept_timeout_s: float) -> Response:
    """Server-sent events as the session goes: a refusal before the server took the stream is
    still an HTTP error; a failure after it, an error event. A caller who leaves cancels it."""
    await job.accepted(accept_timeout_s)
    items = job.items()
    early: list[Event] = []
    if not job.stats.accepted:
        async for item in items:  # refused, failed, or over already
            failure = _failure(item)
            if failure is not None:
                job.cancel()
                return error_response(failure)
            assert isinstance(item, Event)
            early.append(item)
            if item.kind == EventKind.END or job.stats.accepted:
                break

    async def events():
        sent = False
        seen = list(early)
        language = asked.target if asked.task == "translate" else asked.language
        try:
            for event in early:
                text = formats.delta(event, asked.task, language)
                if text:
                    yield formats.sse_delta(text, not sent)
                    sent = True
            async for item in items:
                failure = _failure(item)
                if failure is not None:
                    yield formats.sse_error(failure.body())
                    return
                assert isinstance(item, Event)
                seen.append(item)
                text = formats.delta(item, asked.task, language)
                if text:
                    yield formats.sse_delta(text, not sent)
                    sent = True
            yield formats.sse_done(_answer(asked, seen, duration_s))
        finally:
            job.cancel()  # the caller left (or it ended: then nothing to cancel)

    headers = {SESSION_HEADER: asked.session, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
