"""`/speak`: the page to speak from, and its WebSocket. One socket is one speaker's stream:
its audio goes into a `ResilientSession` (the CLI speaker's: an AudioBuffer, reconnects to the
server that continue the session) on a thread of its own, and the server's events come back
over the socket as JSON (speaker.py has the messages). A page that lost its socket opens a new
one naming the same session: the server continues it (numbering and clock go on), and the
events the old stream still makes (the utterance the drop cut) go to the new socket. A socket
that goes away ends its stream: the buffered audio is sent, the open utterance finished, the
gRPC stream and its threads end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from importlib import resources

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from livetranslate.client import ClientError, Connection, ResilientSession
from livetranslate.gateway import speaker as S
from livetranslate.languages import NAMES
from livetranslate.protocol import ProtocolError, SessionOptions

log = logging.getLogger("livetranslate.gateway")

START_TIMEOUT_S = 30.0  # a socket that sends no start message in this time is closed
BUFFER_S = 30.0  # audio held while the server is away, as `livetranslate stream` holds it
GIVE_UP_S = 60.0  # a server away this long ends the stream (a vanished page holds nothing longer)
KEEP_S = 120.0  # events a dropped page missed wait this long for it to come back
KEEP_EVENTS = 500  # and at most this many per session
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",  # a speaker link's token never leaves in a Referer
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
}
FILES = {"speak.js": "text/javascript", "worklet.js": "text/javascript", "speak.css": "text/css"}


class SocketSource:
    """ResilientSession's source: the audio the socket brings, until it closes or stops."""

    rate, live = S.RATE_HZ, True

    def __init__(self):
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue()

    def put(self, pcm: np.ndarray) -> None:
        self._queue.put(pcm)

    def finish(self) -> None:
        self._queue.put(None)

    def __iter__(self) -> Iterator[np.ndarray]:
        while (chunk := self._queue.get()) is not None:
            yield chunk


class Holder:
    """A connected socket, sent to one message at a time (its own task and an old stream's)."""

    def __init__(self, socket: WebSocket):
        self.socket, self.lock = socket, asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self.socket.client_state == WebSocketState.CONNECTED

    async def send(self, message: dict) -> bool:
        async with self.lock:
            if not self.connected:
                return False
            try:
                await self.socket.send_text(json.dumps(message, ensure_ascii=False))
                return True
            except (WebSocketDisconnect, RuntimeError, OSError):  # it went meanwhile
                return False

    async def close(self, code: int, reason: str) -> None:
        async with self.lock:
            if self.connected:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                    await self.socket.close(code, S.close_reason(reason))


def routes(config) -> list:
    """The page, its scripts, the languages it offers, and the socket."""
    folder = resources.files("livetranslate.gateway") / "speak"
    page = (folder / "index.html").read_bytes()
    files = {name: ((folder / name).read_bytes(), kind) for name, kind in FILES.items()}
    holders = Holders()

    async def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    async def static(request: Request) -> Response:
        body, kind = files[request.url.path.rsplit("/", 1)[-1]]
        return Response(body, media_type=kind, headers=PAGE_HEADERS)

    async def languages(request: Request) -> Response:
        return JSONResponse(NAMES, headers={"Cache-Control": "max-age=3600"})

    async def socket(websocket: WebSocket) -> None:
        await _speak(websocket, config, holders)

    return [
        Route("/speak", index, methods=["GET"]),
        *(Route(f"/speak/{name}", static, methods=["GET"]) for name in FILES),
        Route("/speak/languages.json", languages, methods=["GET"]),
        WebSocketRoute("/speak/socket", socket),
    ]


async def _start(websocket: WebSocket, config) -> tuple[S.Start, SessionOptions, str | None]:
    """The start message, checked and authorized (SpeakError otherwise)."""
    try:
        first = await asyncio.wait_for(websocket.receive(), START_TIMEOUT_S)
    except TimeoutError:
        raise S.SpeakError(S.POLICY, f"no start message in {START_TIMEOUT_S:.0f} s") from None
    if first["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(first.get("code", 1000))
    text, data = first.get("text"), first.get("bytes")
    start = S.parse_start(text if isinstance(text, str) else bytes(data or b""))
    session, key = S.authorize(start, config.speaker_secret, config.gateway_key, config.speaker_links)
    try:
        options = SessionOptions(
            session,
            S.RATE_HZ,
            start.language,
            start.target,
            translate=start.translate,
            partials=start.partials,
            time_base_s=start.time_base_s,
        )
    except ProtocolError as exc:
        raise S.SpeakError(S.UNSUPPORTED, f"start: {exc}") from None
    return start, options, key


async def _speak(websocket: WebSocket, config, holders: Holders) -> None:
    # One piece: one socket's life: its stream's thread, the task that reads the socket and the
    # loop that sends events share the finally that ends the stream on every way out.
    if not S.same_origin(websocket.headers.get("origin"), websocket.headers.get("host")):
        await websocket.close(S.POLICY, "another site's page may not speak here")
        return
    await websocket.accept()
    me = Holder(websocket)
    try:
        start, options, key = await _start(websocket, config)
    except S.SpeakError as error:
        await me.close(error.code, error.reason)
        return
    except WebSocketDisconnect:
        return
    session = options.session
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    def put(kind: str, item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody reads any more
            loop.call_soon_threadsafe(out.put_nowait, (kind, item))

    runner = ResilientSession(
        Connection(config.url, tls=config.tls, ca=config.ca, api_key=key),
        options,
        on_event=lambda event: put("event", S.event_message(event)),
        on_status=lambda text: put("status", {"type": "status", "text": text}),
        max_buffer_s=BUFFER_S,
        give_up_after_s=GIVE_UP_S,
    )
    source = SocketSource()

    def run() -> None:
        try:
            runner.run(source)
        except ClientError as exc:
            put("failed", str(exc))
        except Exception as exc:  # the client library's own failure: said, and logged whole
            log.exception("speaker stream %s failed", session)
            put("failed", f"the gateway's stream failed: {exc}")
        finally:
            source.finish()
            put("done", None)

    link, note = S.reader_link(config.dashboard_url, session, options.target_language, config.speaker_secret)
    holders.add(session, me)
    threading.Thread(target=run, name=f"speak-{session}", daemon=True).start()
    reader = asyncio.create_task(_receive(me, source))
    failure = ""
    try:
        await me.send(S.ready_message(session, options.source_language, options.target_language, link, note))
        for missed in holders.missed(session):  # what its old stream said while the page was away
            await me.send(missed)
        while True:
            kind, item = await out.get()
            if kind == "done":
                break
            if kind == "failed":
                failure = str(item)
                await me.send({"type": "end", "error": failure})
                continue
            assert isinstance(item, dict)
            await holders.deliver(session, me, item)
        if not failure:
            await me.send({"type": "end"})
        await me.close(S.FAILED if failure else S.NORMAL, failure or "the session ended")
    finally:
        reader.cancel()
        source.finish()  # the stream sends what it has, finishes the utterance and ends
        holders.remove(session, me)


class Holders:
    """The connected sockets of each session, and the events of a stream whose page went away
    before it ended: they go to the session's newest socket (the page that reconnected), or
    wait for it a while (KEEP_S, KEEP_EVENTS), so that the utterance a drop cut still reaches it."""

    def __init__(self):
        self._sockets: dict[str, list[Holder]] = {}
        self._missed: dict[str, tuple[float, list[dict]]] = {}  # session -> (when, events)

    def add(self, session: str, holder: Holder) -> None:
        self._sockets.setdefault(session, []).append(holder)

    def remove(self, session: str, holder: Holder) -> None:
        sockets = self._sockets.get(session, [])
        with contextlib.suppress(ValueError):
            sockets.remove(holder)
        if not sockets:
            self._sockets.pop(session, None)

    def missed(self, session: str) -> list[dict]:
        now = time.monotonic()
        for name in [name for name, (when, _) in self._missed.items() if now - when > KEEP_S]:
            del self._missed[name]
        return self._missed.pop(session, (now, []))[1]

    async def deliver(self, session: str, me: Holder, message: dict) -> None:
        if await me.send(message):
            return
        for holder in reversed(self._sockets.get(session, [])):
            if holder is not me and await holder.send(message):
                return
        if message.get("type") == "event":
            events = self._missed.setdefault(session, (time.monotonic(), []))[1]
            if len(events) < KEEP_EVENTS:
                events.append(message)


async def _receive(me: Holder, source: SocketSource) -> None:
    """The socket's audio into the stream, acknowledged; a stop, a close or a message the
    gateway cannot use ends it (the latter with its reason)."""
    received = 0
    try:
        while True:
            message = await me.socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                S.parse_control(message.get("text") or "")
                return  # stop: the stream ends after the open utterance
            pcm = S.check_frame(data)
            source.put(pcm)
            received += len(pcm)
            await me.send({"type": "ack", "samples": received})
    except S.SpeakError as error:
        await me.close(error.code, error.reason)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        source.finish()
