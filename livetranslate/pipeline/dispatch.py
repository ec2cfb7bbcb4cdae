"""The `pipeline` model's requests, routed: a START opens a Stream, audio goes to its
stream, a sequence end ends it, a SUBSCRIBE becomes a viewer. Also who may open more
(admission), and what happens to streams whose client vanished, and at shutdown."""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from livetranslate.keys import Client, Keys
from livetranslate.periodic import Every
from livetranslate.pipeline.guards import (
    Admission,
    LlmBreaker,
    Quota,
    Scope,
    ServerFull,
    TranslationLoad,
    WhisperLoad,
)
from livetranslate.pipeline.messages import Chunk, LastChunk
from livetranslate.pipeline.metrics import NO_METRICS, Gauges, Metrics, Sampler
from livetranslate.pipeline.options import PipelineOptions, Shared
from livetranslate.pipeline.replies import Reply
from livetranslate.pipeline.revisions import Revisions
from livetranslate.pipeline.sessions import SegmentIds, SessionKeeper, ViewerLanguages
from livetranslate.pipeline.shutdown import Stopping
from livetranslate.pipeline.stages import Stages
from livetranslate.pipeline.stream import Stream
from livetranslate.pipeline.viewers import Viewers
from livetranslate.protocol import (
    AUDIO,
    DRAIN,
    DRAIN_GRACE_S,
    RETRY_ELSEWHERE,
    SESSION_ACTION,
    SUBSCRIBE,
    TARGET_LANGUAGE,
    Event,
    EventKind,
    ProtocolError,
    SessionOptions,
    decode_text,
    validate_audio_chunk,
)
from livetranslate.stages.state import StreamTable
from livetranslate.store import SessionBusy
from livetranslate.store.interface import NoStore, Store

log = logging.getLogger("livetranslate.pipeline")
# streams closed for want of audio whose client is told so on its next requests (the most
# remembered; older ones get the general "no open stream" answer)
GONE_REMEMBERED = 4096


NO_KEY = (
    "this server needs a client key: send yours in the x-livetranslate-key header "
    "(`livetranslate stream --api-key-file`, or $LIVETRANSLATE_API_KEY)"
)


def no_audio_message(seconds: float, yielded: bool = False) -> str:
    """What the client of a stream closed for want of audio is told."""
    why = " to make room for another speaker" if yielded else ""
    return f"no audio for {seconds:.0f} s: the stream was closed{why}; reconnect to go on"


class Pipeline(Stopping):
    """All open streams of one `pipeline` instance."""

    def __init__(
        self,
        stages: Stages,
        options: PipelineOptions = PipelineOptions(),
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        end_sequence: Callable[[int], None] | None = None,
        metrics: Metrics = NO_METRICS,
        keys: Keys | None = None,
        quota: Quota | None = None,
    ):
        """`keys`: the server's named client keys (livetranslate.keys): every request must
        carry one, and each client's streams and viewers are counted in `quota`."""
        # without a store nothing is kept and nobody can subscribe (NoStore, the null store)
        self.store: Store = store if store is not None else NoStore()
        self.stages, self.options, self.metrics = stages, options, metrics
        self.keys = keys
        # ends one of this model's own sequences in Triton (a drain, for clients that will not)
        self.end_sequence = end_sequence
        self.stopping = ""  # why new streams and viewers are refused: the server is stopping
        # every sequence Triton holds open for this model (started, not ended), streams or not:
        # Triton's shutdown waits for each one
        self.sequences: StreamTable[bool] = StreamTable(options.session_ttl_s, clock=clock)
        self.shared = Shared(
            WhisperLoad(),
            LlmBreaker(options.llm_timeouts_to_pause, options.llm_pause_s),
            SegmentIds(),
            clock,
            languages=ViewerLanguages(options.limits.max_viewer_languages, self.store if self.store.shared else None),
            metrics=metrics,
            translations=TranslationLoad(options.translation_budget_s, model=options.basic_model),
            background_breaker=LlmBreaker(options.llm_timeouts_to_pause, options.llm_pause_s),
        )
        self.admission = Admission(options.limits, metrics, quota)
        self.sessions = SessionKeeper(self.store, metrics)
        self.unstored = SessionKeeper(NoStore(), metrics)  # streams whose client asked to keep nothing (STORE)
        # corrections, summaries, late viewers' languages: what is added to a session afterwards
        self.revisions = Revisions(
            self.store,
            stages,
            self.shared.languages,
            self.shared.background_breaker,
            self.shared.translations,
            options.llm_timeout_s,
        )
        self.viewers = Viewers(self.store, self.admission, self.shared.languages, self.revisions.late_viewer)
        self.streams: StreamTable[Stream] = StreamTable(options.session_ttl_s, on_expire=self._expired, clock=clock)
        self._open: set[Stream] = set()  # every stream not closed yet, in the table or not
        # the streams that hold a place in `admission`, and the client each came with
        self._placed: dict[Stream, Client | None] = {}
        # stream id -> what its client is told: its stream was closed for want of audio
        self._gone: collections.OrderedDict[int, str] = collections.OrderedDict()
        self._refused_ends: queue.Queue[int] | None = None  # sequences of refused starts, to end
        self._watch: Every | None = None  # closes streams without audio (start_watch)
        # guards _open; notified when a stream closes or a drain's grace is cut short
        self._open_changed = threading.Condition()
        self._grace_ends = float("inf")  # monotonic time: a drain's grace ends here at the latest
        self._final_drain = threading.Lock()  # one drain ends things at a time
        self._sampler = Sampler(self.report_gauges, metrics.sample_every_s) if metrics.sample_every_s > 0 else None

    def _expired(self, stream_id: int, stream: Stream) -> None:
        """A stream idle past the TTL: its client vanished."""
        stream.abandon("the speaker's stream stopped sending and timed out")

    def _stream_closed(self, stream: Stream) -> None:
        """Called once by each stream, from its close(), on every path."""
        self._free_place(stream)
        with self._open_changed:
            self._open.discard(stream)
            self._open_changed.notify_all()

    def _free_place(self, stream: Stream) -> None:
        """The stream's place in `admission` is free (once; a closing stream may free it
        before its workers are done)."""
        with self._open_changed:
            if stream not in self._placed:
                return
            client = self._placed.pop(stream)
        self.admission.stream_left(stream.options.session, client)

    def _client_of(self, stream: Stream) -> Client | None:
        with self._open_changed:
            return self._placed.get(stream)

    # --- streams that send no audio -------------------------------------------------------
    def close_silent(self) -> int:
        """Closes every speaker stream that has sent no audio for `no_audio_s`; returns how many."""
        most = self.options.no_audio_s
        if most <= 0:
            return 0
        now, closed = self.shared.clock(), 0
        for stream_id in self.streams.keys():
            stream = self.streams.peek(stream_id)
            if stream is not None and not (stream.closed or stream.abandoned) and stream.no_audio_s(now) >= most:
                self._close_for_no_audio(stream_id, stream, no_audio_message(most), "no_audio")
                closed += 1
        return closed

    def _make_room(self, scope: Scope) -> bool:
        """A new speaker finds the server, its session or its client's quota full (`scope`):
        the stream there that has sent no audio for longest, if for over `no_audio_yield_s`,
        is closed and its place freed. False when none has been quiet that long."""
        least = self.options.no_audio_yield_s
        if least <= 0:
            return False
        now, quietest = self.shared.clock(), None
        what, name = scope
        for stream_id in self.streams.keys():
            stream = self.streams.peek(stream_id)
            if stream is None or stream.closed or stream.abandoned:
                continue
            if what == "session" and stream.options.session != name:
                continue
            if what == "client" and getattr(self._client_of(stream), "name", None) != name:
                continue
            quiet = stream.no_audio_s(now)
            if quiet > least and (quietest is None or quiet > quietest[0]):
                quietest = (quiet, stream_id, stream)
        if quietest is None:
            return False
        quiet, stream_id, stream = quietest
        self._close_for_no_audio(stream_id, stream, no_audio_message(quiet, yielded=True), "yielded")
        return True

    def _close_for_no_audio(self, stream_id: int, stream: Stream, message: str, reason: str) -> None:
        """Closes a stream whose client sends no audio: its place is free at once, its session
        stores an `end` saying why (and goes on when the client reconnects), and the client
        is told on its next request."""
        if self.streams.pop(stream_id) is not stream:  # closed already (the watch and a request both saw it)
            return
        log.info("stream %s (session %s): %s", stream_id, stream.options.session, message)
        with self._open_changed:
            self._gone[stream_id] = message
            while len(self._gone) > GONE_REMEMBERED:
                self._gone.popitem(last=False)
        self._free_place(stream)
        self.admission.refused("stream", reason)
        stream.abandon(message)

    def _gone_message(self, stream_id: int) -> str:
        with self._open_changed:
            return self._gone.get(stream_id, "")

    def start_watch(self, every_s: float | None = None) -> None:
        """A thread that closes streams without audio (every quarter of `no_audio_s`, at most
        every 5 s: off the requests' path)."""
        every_s = every_s or max(0.05, min(5.0, self.options.no_audio_s / 4 if self.options.no_audio_s > 0 else 5.0))
        self._watch = Every(self.close_silent, every_s, "no-audio-watch", "closing streams without audio")

    def open_streams(self) -> list[Stream]:
        with self._open_changed:
            return list(self._open)

    def gauges(self) -> Gauges:
        """What this pipeline holds now: live streams and viewers, the most audio waiting in
        one stream, the transcripts of all streams still without their translation, and how
        long the oldest of those has waited."""
        streams, viewers = self.admission.counts()
        loads = [stream.load() for stream in self.open_streams()]
        oldest = min((load.oldest_untranslated for load in loads if load.oldest_untranslated is not None), default=None)
        return Gauges(
            streams,
            viewers,
            queued_audio_s=max((load.queued_audio_s for load in loads), default=0.0),
            translation_backlog=sum(load.untranslated for load in loads),
            translation_lag_s=0.0 if oldest is None else max(0.0, time.monotonic() - oldest),
            llm_breaker_open=self.shared.breaker.is_open,
            llm_background_breaker_open=self.shared.background_breaker.is_open,
        )

    def report_gauges(self) -> None:
        self.metrics.gauges(self.gauges())

    def _start(
        self, stream_id: int, get: Callable[[str], np.ndarray | None], end: bool, client: Client | None = None
    ) -> Stream:
        options = SessionOptions.from_tensors(get, default_session=f"stream-{stream_id}")
        validate_audio_chunk(get(AUDIO), options.sample_rate, last=end)  # a bad first chunk opens nothing
        old = self.streams.pop(stream_id)
        if old is not None:  # a START on a live sequence id: the old stream ends first
            old.abandon("a new stream started under the same sequence id")
        self.admission.admit_stream(options.session, self._make_room, client)
        with self._open_changed:
            self._gone.pop(stream_id, None)  # a new stream under an old id
        session = None
        try:
            # the session first: with a shared store, the lease to go on from
            keeper = self.sessions if options.store else self.unstored
            session = keeper.open(
                options.session, options.source_language, options.target_language, options.glossary.to_list()
            )
            next_segment, end_s = self.store.resume_point(options.session) if options.store else (0, 0.0)
            options = dataclasses.replace(
                options,
                segment_base=max(options.segment_base, next_segment),
                time_base_s=max(options.time_base_s, end_s),
            )
            stream = Stream(
                stream_id, options, self.stages, self.options, self.shared, session, on_closed=self._stream_closed
            )
        except BaseException:
            self.admission.stream_left(options.session, client)
            if session is not None:
                session.release("", 0.0)
            raise
        with self._open_changed:
            self._open.add(stream)
            self._placed[stream] = client
        self.streams.put(stream_id, stream)
        return stream

    def handle(
        self,
        stream_id: int,
        start: bool,
        end: bool,
        get: Callable[[str], np.ndarray | None],
        reply: Reply,
        arrived: float | None = None,
        internal: Callable[[], bool] = lambda: False,
        key: Callable[[], str] = lambda: "",
    ) -> None:
        """One request. Never raises: problems become `error` events on `reply`. `internal()`:
        whether the request carries the server's own token; `key()`: the client key it
        carries (with named keys: livetranslate.keys)."""
        # One piece: every branch of a request (start, audio, end, subscribe, drain) shares one
        # try/except that turns any problem into an `error` event; it never raises into Triton.
        arrived = time.monotonic() if arrived is None else arrived
        self.streams.expire()
        self.sequences.expire()  # Triton drops an idle sequence as late as the streams expire
        if end:
            self.sequences.pop(stream_id)
        elif start:
            self.sequences.put(stream_id, True)
        else:
            self.sequences.get(stream_id)  # still in use
        self.sessions.retry()
        try:
            if get(DRAIN) is not None:
                self._drain_request(reply, internal(), get(DRAIN_GRACE_S))
                return
            subscribe = get(SUBSCRIBE)
            action = get(SESSION_ACTION)
            client = None
            if self.keys is not None and not internal():
                client = self.keys.identify(key())
                if client is None:
                    self.admission.refused("viewer" if subscribe is not None else "stream", "no_key")
                    if not (start or subscribe is not None):
                        raise ProtocolError(NO_KEY)
                    reply.send(Event(EventKind.END, error=NO_KEY))  # over before it began
                    reply.close()
                    if start and not end:
                        self._end_refused(stream_id)
                    return
            if (start or subscribe is not None) and self.stopping:
                # over before it began, like a full server's refusal: an `end` that says why
                self.admission.refused("viewer" if subscribe is not None else "stream", "draining")
                reply.send(Event(EventKind.END, RETRY_ELSEWHERE, error=self.refusal))
                reply.close()
                if start and not end:
                    self._end_refused(stream_id)
                return
            if subscribe is not None:
                self.viewers.subscribe(stream_id, subscribe, reply, get(TARGET_LANGUAGE), client)
                return
            if action is not None:  # an organiser's correction or summary: answered, then `end`
                self.revisions.request(stream_id, decode_text(action), reply)
                return
            if start:
                try:
                    self._start(stream_id, get, end, client)
                except (ServerFull, SessionBusy) as exc:  # over before it began: say so with its end
                    if isinstance(exc, SessionBusy):
                        self.admission.refused("stream", "session_elsewhere")
                    # another server, or this one later, takes it; not so a client's own quota
                    passing = getattr(exc, "reason", "") != "client_full"
                    reply.send(Event(EventKind.END, RETRY_ELSEWHERE if passing else "", error=str(exc)))
                    reply.close()
                    if not end:  # Triton would hold the refused sequence until it idles out
                        self._end_refused(stream_id)
                    return
            stream = self.streams.pop(stream_id) if end else self.streams.get(stream_id)
            if stream is not None and (stream.closed or stream.abandoned):
                self.streams.pop(stream_id)
                stream = None
            if stream is None and self._gone_message(stream_id):
                raise ProtocolError(self._gone_message(stream_id))
            if stream is None and self.stopping:
                raise ProtocolError(f"{self.stopping}: this stream has ended; reconnect in a moment")
            if stream is None:
                raise ProtocolError(
                    "no open stream for this sequence: it was never started, failed to start, "
                    "was refused, ended, or idled out"
                )
            if stream.failure:
                self.streams.pop(stream_id)
                raise ProtocolError(stream.failure)
            if self.keys is not None and client is not None and self._client_of(stream) != client:
                raise ProtocolError("this stream was opened with another client key")
            try:
                audio = validate_audio_chunk(get(AUDIO), stream.options.sample_rate, last=end)
            except ProtocolError as exc:
                if not end:
                    raise
                reply.send(Event(EventKind.ERROR, str(exc)))
                audio = np.zeros(0, np.int16)
            reply = stream.reply_for(reply)
            stream.submit((LastChunk if end else Chunk)(audio, arrived, reply))
        except ProtocolError as exc:
            reply.send(Event(EventKind.ERROR, str(exc)))
            reply.close()
        except Exception as exc:  # e.g. the data dir is not writable: this stream fails, not the server
            log.exception("stream %s: request failed", stream_id)
            reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
            reply.close()
