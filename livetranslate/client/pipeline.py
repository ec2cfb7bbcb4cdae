"""One gRPC stream to `pipeline`: a speaker's audio in and events out, with backpressure; a
viewer's watch; the stored sessions."""

from __future__ import annotations

import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from livetranslate import protocol as P
from livetranslate.client.connection import (
    ADDRESS_TIMEOUT_S,
    DEFAULT_URL,
    KEEPALIVE_S,
    ClientError,
    Connection,
    Unreachable,
    diagnose,
    passing_refusal,
    plain,
    stop_stream,
)
from livetranslate.protocol import Event, EventKind, SessionOptions

# Backpressure: at most this much audio is sent and not yet answered (each request's final
# response comes when the server has processed its audio, or, for a chunk that closed an
# utterance, when that utterance's translation is out). A file streamed without --realtime
# thus goes at the server's pace with flat memory on both sides; live capture waits in the
# capture buffer meanwhile.
WINDOW_S = 20.0


# The server answers a stream's first request within this time, or the stream gives up with
# a clear message (a server whose sequence slots are all taken queues new streams silently).
START_TIMEOUT_S = 30.0


def _read_events(
    events: queue.Queue, idle_timeout_s: float, last: tuple, waiting: Callable[[], bool] = lambda: True
) -> Iterator[Event]:
    """Events a stream callback queued, up to one of kind `last`; errors raised. Silence
    longer than `idle_timeout_s` is an error only while `waiting()` (an answer is due):
    a live capture of a quiet meeting gets no events for minutes, and that is fine."""
    while True:
        try:
            item = events.get(timeout=idle_timeout_s)
        except queue.Empty:
            if not waiting():
                continue
            raise ClientError(f"no answer from the server for {idle_timeout_s:.0f} s") from None
        if isinstance(item, Exception):
            raise item
        yield item
        if item.kind in last:
            return


class _Window:
    """Audio sent and not yet answered, by request id (see WINDOW_S)."""

    def __init__(self, most_samples: float):
        self.most = most_samples
        self._pending: dict[str, int] = {}
        self._ids = 0
        self._first_answered = False
        self._aborted = False
        self._cond = threading.Condition()

    def sending(self, samples: int) -> str:
        with self._cond:
            self._ids += 1
            self._pending[str(self._ids)] = samples
            return str(self._ids)

    def answered(self, request_id: str) -> None:
        with self._cond:
            self._pending.pop(request_id, None)
            self._first_answered = True
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    @property
    def unanswered_start(self) -> bool:
        return self._ids > 0 and not self._first_answered and not self._aborted

    def wait_for_room(self, samples: int, first_answer_s: float) -> bool:
        """Blocks while the window is full; False when the stream was aborted, or its first
        request got no answer in `first_answer_s`."""
        deadline = time.monotonic() + first_answer_s
        with self._cond:
            while not self._aborted:
                # until the first request is answered nothing else goes out: a server that
                # refuses the stream gets no more audio than its first chunk
                room = sum(self._pending.values()) + samples <= self.most
                if not self._pending or (self._first_answered and room):
                    return True
                if not self._first_answered and time.monotonic() > deadline:
                    return False
                self._cond.wait(0.5)
            return False


@dataclass
class StreamStats:
    chunks_sent: int = 0
    audio_s: float = 0.0
    started: float = 0.0
    finished: float = 0.0
    accepted: bool = False  # the server answered the first request without ending or refusing the stream


class PipelineClient:
    """A connection to the first of the addresses that answers (live, `pipeline` ready), tried
    in order: `addresses` (default: the connection's own order). `url` is the one it reached."""

    def __init__(
        self, url: str | Connection = DEFAULT_URL, timeout_s: float = 10.0, addresses: Iterable[str] | None = None
    ):
        import tritonclient.grpc as grpcclient

        self.connection = url if isinstance(url, Connection) else Connection(url)
        self._grpc = grpcclient
        if self.connection.ca and not os.access(self.connection.ca, os.R_OK):
            raise ClientError(f"cannot read the CA certificate {self.connection.ca}")
        order = tuple(addresses or self.connection.urls)
        each_s = timeout_s if len(order) == 1 else min(timeout_s, ADDRESS_TIMEOUT_S)
        reasons = []
        for address in order:
            try:
                self.client = self._open(address, each_s)
            except ClientError as exc:
                reasons.append(str(exc))
                continue
            self.url = address
            return
        if len(reasons) == 1:
            raise Unreachable(reasons[0])
        raise Unreachable(f"none of the {len(reasons)} servers answered:\n  " + "\n  ".join(reasons))

    def _open(self, url: str, timeout_s: float):
        """A client of the server at `url` once it is live with `pipeline` ready; ClientError
        saying why not."""
        grpcclient = self._grpc
        client = None
        try:
            # tritonclient reads root_certificates from this path itself
            client = grpcclient.InferenceServerClient(
                url=url,
                ssl=self.connection.tls,
                root_certificates=self.connection.ca,
                # finds a dead network within about a minute (the server allows pings every 10 s)
                keepalive_options=grpcclient.KeepAliveOptions(
                    keepalive_time_ms=KEEPALIVE_S * 1000,
                    keepalive_timeout_ms=20_000,
                    keepalive_permit_without_calls=True,
                    http2_max_pings_without_data=0,
                ),
            )
            live = client.is_server_live(client_timeout=timeout_s)
            ready = live and client.is_model_ready(
                P.PIPELINE, client_timeout=timeout_s, headers=self.connection.headers
            )
        except Exception as exc:
            if client is not None:
                client.close()
            raise ClientError(diagnose(url, self.connection.tls, exc)) from None
        if not ready:
            client.close()
            raise ClientError(f"the server at {url} is up but the `{P.PIPELINE}` model is not ready")
        return client

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def watch(self, session: str, idle_timeout_s: float = 3600.0, language: str | None = None) -> Iterator[Event]:
        """Follows a session as a viewer: its history, then live events, until `end`. With a
        `language` (a Whisper code; ProtocolError when unknown) the translations come in that
        language, made by the server while anyone watches in it; None: the speaker's target."""
        language = P.check_language(language) if language is not None else None
        return self._watch(session, idle_timeout_s, language)

    def _watch(self, session: str, idle_timeout_s: float, language: str | None) -> Iterator[Event]:
        events: queue.Queue = queue.Queue()
        self.client.start_stream(
            callback=lambda result, error: events.put(
                ClientError(plain(error)) if error else Event.from_tensors(result.as_numpy)
            ),
            headers=self.connection.headers,
        )
        tensor = self._grpc.InferInput(P.SUBSCRIBE, [1], "BYTES")
        tensor.set_data_from_numpy(np.array([session.encode("utf-8")], dtype=np.object_))
        audio = self._grpc.InferInput(P.AUDIO, [0], "INT16")
        audio.set_data_from_numpy(np.zeros(0, np.int16))
        inputs = [audio, tensor]
        if language is not None:
            inputs.append(self._grpc.InferInput(P.TARGET_LANGUAGE, [1], "BYTES"))
            inputs[-1].set_data_from_numpy(np.array([language.encode()], dtype=np.object_))
        self.client.async_stream_infer(
            P.PIPELINE, inputs, sequence_id=random.randint(1, 2**63 - 1), sequence_start=True, sequence_end=True
        )
        ended = False
        try:
            # a viewer's own failure (no such session, dropped) comes as an `end` that
            # carries it in ERROR; errors in the history are just events
            for event in _read_events(events, idle_timeout_s, (EventKind.END,)):
                ended = ended or event.kind == EventKind.END
                yield event
        finally:
            # after `end` the stream closes as it should; cancelling a finished request
            # instead leaves it unreleased in Triton 2.51, and the server then cannot
            # unload `pipeline` when it stops (it waits out its exit timeout)
            stop_stream(self.client, cancel=not ended)

    def sessions(self, action: str = "list", session: str = ""):
        """`sessions` model: the list of sessions, or one session's info and events."""
        import json

        inputs = []
        for name, value in ((P.ACTION, action), (P.SESSION, session)):
            tensor = self._grpc.InferInput(name, [1], "BYTES")
            tensor.set_data_from_numpy(np.array([value.encode("utf-8")], dtype=np.object_))
            inputs.append(tensor)
        try:
            result = self.client.infer(P.SESSIONS, inputs, headers=self.connection.headers)
        except Exception as exc:
            raise ClientError(plain(exc).replace("sessions: ", "")) from None
        data = json.loads(P.decode_text(result.as_numpy(P.RESULT)))
        if action == "get":
            data["events"] = [Event.from_dict(e) for e in data["events"]]
        return data

    def _inputs(self, audio: np.ndarray, options: SessionOptions | None):
        tensors = {P.AUDIO: np.ascontiguousarray(audio, dtype=np.int16)}
        if options is not None:
            tensors.update(options.to_tensors())
        inputs = []
        for name, value in tensors.items():
            dtype = "BYTES" if value.dtype == np.object_ else self._grpc.np_to_triton_dtype(value.dtype)
            tensor = self._grpc.InferInput(name, list(value.shape), dtype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        return inputs

    def stream(
        self,
        chunks: Iterable[np.ndarray],
        options: SessionOptions,
        *,
        realtime: bool = False,
        stats: StreamStats | None = None,
        idle_timeout_s: float = 120.0,
    ) -> Iterator[Event]:
        """Sends int16 chunks at `options.sample_rate` on one gRPC stream and yields events
        as they arrive, ending with the `end` event. Raises ClientError on a Triton error."""
        # One piece: the sender thread, the reader and the backpressure window share the
        # stream's state (its queue, its window, its stats) and one cleanup on every way out.
        stats = stats or StreamStats()
        events: queue.Queue = queue.Queue()
        sequence_id = random.randint(1, 2**63 - 1)
        window = _Window(WINDOW_S * options.sample_rate)

        refused = threading.Event()  # the stream ended, or was refused for now, before it began

        def callback(result, error):
            if error is not None:
                window.abort()
                events.put(ClientError(plain(error)))
                return
            response = result.get_response()
            event = Event.from_tensors(result.as_numpy) if response.outputs else None
            if event is not None and not stats.accepted and (event.kind == EventKind.END or passing_refusal(event)):
                refused.set()
            final = response.parameters.get("triton_final_response")
            if final is not None and final.bool_param:
                if response.id == "1" and not refused.is_set():  # the window numbers requests from 1
                    stats.accepted = True
                window.answered(response.id)
            if event is None:
                return
            if event.kind == EventKind.END:
                window.abort()  # refused, stopped or done: nothing more to send
            events.put(event)

        sent_all = threading.Event()
        send_error: list[Exception] = []

        def request(chunk: np.ndarray, first: bool, last: bool) -> None:
            request_id = window.sending(len(chunk))
            self.client.async_stream_infer(
                P.PIPELINE,
                self._inputs(chunk, options if first else None),
                request_id=request_id,
                sequence_id=sequence_id,
                sequence_start=first,
                sequence_end=last,
                enable_empty_final_response=True,
            )

        def send():
            try:
                stats.started = time.monotonic()
                first = True
                for chunk in chunks:
                    if realtime:  # pace: never ahead of the wall clock
                        ahead = stats.started + stats.audio_s - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                    if not window.wait_for_room(len(chunk), first_answer_s=START_TIMEOUT_S):
                        if window.unanswered_start:
                            events.put(
                                ClientError(
                                    f"the server did not accept the stream within {START_TIMEOUT_S:.0f} s: "
                                    f"it is overloaded; try again later"
                                )
                            )
                            return
                        break  # the stream ended early (refused or stopped): end the sequence
                    request(chunk, first, False)
                    first = False
                    stats.chunks_sent += 1
                    stats.audio_s += len(chunk) / options.sample_rate
                request(np.zeros(0, np.int16), first, True)
            except Exception as exc:  # surfaced to the reader below
                send_error.append(exc)
                events.put(ClientError(f"sending audio failed: {plain(exc)}"))
            finally:
                sent_all.set()

        self.client.start_stream(callback=callback, headers=self.connection.headers)
        sender = threading.Thread(target=send, name="livetranslate-send", daemon=True)
        sender.start()
        ended = False
        try:
            # while audio is still going out, a dead connection shows as a gRPC error (keepalive
            # pings find a silent network drop); the idle limit is for the final flush
            for item in _read_events(events, idle_timeout_s, (EventKind.END,), waiting=sent_all.is_set):
                if item.kind == EventKind.END:
                    stats.finished = time.monotonic()
                    ended = True
                yield item
        finally:
            stop_stream(self.client, cancel=not ended)
