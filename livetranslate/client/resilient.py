"""A speaker's session that outlives its connections: audio kept while disconnected, passing
refusals waited out, the next server tried."""

from __future__ import annotations

import collections
import dataclasses
import threading
from collections.abc import Callable

import numpy as np

from livetranslate.client.connection import (
    ClientError,
    Connection,
    Unreachable,
    passing_refusal,
)
from livetranslate.client.pipeline import PipelineClient, StreamStats
from livetranslate.protocol import EventKind, SessionOptions


class AudioBuffer:
    """Between capture and network. A live source never waits: past `max_s` of audio the
    oldest is dropped and counted. A file source waits instead (nothing is lost)."""

    def __init__(self, rate: int, live: bool, max_s: float = 30.0):
        self.rate, self.live, self.max_samples = rate, live, int(max_s * rate)
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._samples = 0
        self._cond = threading.Condition()
        self.finished = False
        self.dropped_s = 0.0

    def put(self, chunk: np.ndarray) -> None:
        with self._cond:
            if not self.live:
                self._cond.wait_for(lambda: self._samples < self.max_samples)
            self._chunks.append(chunk)
            self._samples += len(chunk)
            while self.live and self._samples > self.max_samples:
                old = self._chunks.popleft()
                self._samples -= len(old)
                self.dropped_s += len(old) / self.rate
            self._cond.notify_all()

    def finish(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def unget(self, chunks: list[np.ndarray]) -> None:
        """Puts audio taken but not delivered (a server refused it) back ahead of the rest;
        past `max_s` a live source drops the oldest as usual."""
        with self._cond:
            self._chunks.extendleft(reversed(chunks))
            self._samples += sum(len(chunk) for chunk in chunks)
            while self.live and self._samples > self.max_samples:
                old = self._chunks.popleft()
                self._samples -= len(old)
                self.dropped_s += len(old) / self.rate
            self._cond.notify_all()

    def get(self, timeout: float) -> np.ndarray | None:
        with self._cond:
            self._cond.wait_for(lambda: self._chunks or self.finished, timeout)
            if not self._chunks:
                return None
            chunk = self._chunks.popleft()
            self._samples -= len(chunk)
            self._cond.notify_all()
            return chunk

    @property
    def buffered_s(self) -> float:
        return self._samples / self.rate


def level_dbfs(chunk: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(chunk.astype(np.float64) / 32768.0)))) if len(chunk) else 0.0
    return 20 * np.log10(max(rms, 1e-6))


class Refused(ClientError):
    """A server answered but did not take the stream (or viewer) now: see PASSING_REFUSALS."""


class Lost(Exception):
    """A stream the server had accepted was lost: reconnect at once, a new outage begins."""


def retrying(
    first: bool,
    retry: bool,
    addresses: int,
    give_up_after_s: float | None,
    max_backoff_s: float,
    on_status: Callable[[str], None],
):
    """The tries of one outage. The first connection fails at once when no server answers (one
    that is not running is the user's to fix), and when each address was tried once; after a
    connection was lost, retry with backoff until `give_up_after_s` (None: never)."""
    from tenacity import (
        Retrying,
        retry_if_exception_type,
        stop_after_delay,
        stop_never,
        wait_exponential,
    )

    later = stop_after_delay(give_up_after_s) if give_up_after_s else stop_never

    def stop(state) -> bool:
        if not retry:
            return True
        if first:
            return isinstance(state.outcome.exception(), Unreachable) or state.attempt_number >= addresses
        return later(state)

    def before_sleep(state) -> None:
        exc = state.outcome.exception()
        what = str(exc) if isinstance(exc, Refused) else f"cannot connect ({exc})"
        on_status(f"{what}; retrying in {state.next_action.sleep:.1f} s")

    return Retrying(
        wait=wait_exponential(multiplier=0.5, max=max_backoff_s),
        retry=retry_if_exception_type(ClientError),
        stop=stop,
        reraise=True,
        before_sleep=before_sleep,
    )


def connected(client: PipelineClient, previous: str | None, session: str) -> str:
    moved = f" (moved from {previous})" if previous not in (None, client.url) else ""
    return f"connected to {client.url}, session {session}{moved}"


class ResilientSession:
    """A capture that survives server restarts, drains and network drops: it reconnects with
    exponential backoff and continues the same session (new sequence, same name, segment
    numbers and clock go on). With several addresses it goes on at the one after the address
    it lost (round robin), and leaves a server that refuses the stream for now to the next.
    Audio captured meanwhile waits in a bounded buffer; what overflows is dropped and reported,
    never silently; audio a refusing server took goes back to the buffer."""

    def __init__(
        self,
        connection: Connection,
        options: SessionOptions,
        *,
        on_event,
        on_status,
        reconnect: bool = True,
        max_buffer_s: float = 30.0,
        max_backoff_s: float = 8.0,
        give_up_after_s: float | None = None,
    ):
        self.connection, self.options, self.reconnect = connection, options, reconnect
        self.on_event, self.on_status = on_event, on_status
        self.max_buffer_s, self.max_backoff_s, self.give_up_after_s = max_buffer_s, max_backoff_s, give_up_after_s
        self.stop = threading.Event()  # Ctrl-C: stop capturing, flush, end
        self.level = -120.0
        self.reconnects = 0
        self.address: str | None = None  # the server of the latest stream

    def _capture(self, source, buffer: AudioBuffer) -> None:
        reported, overflows = 0.0, 0
        try:
            for chunk in source:
                if self.stop.is_set():
                    break
                self.level = level_dbfs(chunk)
                buffer.put(chunk)
                if buffer.dropped_s - reported >= 1.0:
                    reported = buffer.dropped_s
                    self.on_status(f"warning: buffer full, dropped {buffer.dropped_s:.1f} s of audio so far")
                if getattr(source, "overflows", 0) > overflows:
                    overflows = source.overflows
                    self.on_status(
                        f"warning: the audio device dropped input {overflows} time(s): "
                        f"the machine is too busy to read it in time"
                    )
        finally:
            buffer.finish()

    def run(self, source) -> None:
        buffer = AudioBuffer(source.rate, source.live, self.max_buffer_s)
        threading.Thread(target=self._capture, args=(source, buffer), name="capture", daemon=True).start()
        first = True
        while True:
            try:
                for attempt in retrying(
                    first,
                    self.reconnect,
                    len(self.connection.urls),
                    self.give_up_after_s,
                    self.max_backoff_s,
                    self.on_status,
                ):
                    with attempt:
                        self._stream(source, buffer)
                return
            except Lost:
                first = False

    def _stream(self, source, buffer: AudioBuffer) -> None:
        """One stream, on the first server that answers from the address after the latest.
        Returns when the session ended. Raises ClientError when the stream was refused or lost
        before the server accepted it (its audio back in the buffer), Lost when it was lost
        after (ClientError without `reconnect`)."""
        # One piece: one connection's life: the sender, the buffer and the handling of a refusal share
        # the try that decides whether the audio goes back into the buffer for the next server.
        client = PipelineClient(self.connection, addresses=self.connection.after(self.address))
        self.on_status(connected(client, self.address, self.options.session))
        self.address = client.url
        stats = StreamStats()
        lock = threading.Lock()
        taking, sent_s = True, 0.0
        unaccepted: list[np.ndarray] = []  # audio taken before the server accepted the stream

        def audio():
            nonlocal sent_s
            while True:
                with lock:  # nothing is taken once the stream failed
                    if not taking:
                        return
                    chunk = buffer.get(timeout=0.2)
                    if chunk is not None:
                        if stats.accepted:
                            unaccepted.clear()
                        else:
                            unaccepted.append(chunk)
                        sent_s += len(chunk) / source.rate
                if chunk is None:
                    if buffer.finished:
                        return
                    continue
                yield chunk

        try:
            for event in client.stream(
                audio(), dataclasses.replace(self.options, sample_rate=source.rate), stats=stats
            ):
                refusal = passing_refusal(event)
                if refusal:  # stopping, full, or the session is still held elsewhere
                    raise Refused(f"{client.url} refused the stream: {refusal}" if not stats.accepted else refusal)
                if event.kind == EventKind.TRANSCRIPT:
                    self.options = dataclasses.replace(self.options, segment_base=event.segment_id + 1)
                self.on_event(event)
            return
        except ClientError as exc:
            with lock:
                taking = False
                returned = [] if stats.accepted else list(unaccepted)
            buffer.unget(returned)
            sent_s -= sum(len(chunk) for chunk in returned) / source.rate
            self.options = dataclasses.replace(self.options, time_base_s=self.options.time_base_s + sent_s)
            if not stats.accepted or not self.reconnect:
                raise
            self.reconnects += 1
            self.on_status(
                f"connection lost ({exc}); reconnecting, audio is buffered (up to {self.max_buffer_s:.0f} s)"
            )
            raise Lost() from exc
        finally:
            with lock:
                taking = False
            client.close()
