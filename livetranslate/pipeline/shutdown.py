"""How a `pipeline` stops: new speakers and viewers refused at once, the live streams given a
grace to end, then everything ended (viewers told, streams abandoned to move on, the sequences
Triton still holds ended as their clients would). Also the sequences of refused starts."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from livetranslate.pipeline.replies import Reply
from livetranslate.protocol import DRAIN, DRAIN_GRACE_S, Event, EventKind, ProtocolError

if TYPE_CHECKING:
    from livetranslate.periodic import Every
    from livetranslate.pipeline.metrics import Sampler
    from livetranslate.pipeline.revisions import Revisions
    from livetranslate.pipeline.stream import Stream
    from livetranslate.pipeline.viewers import Viewers
    from livetranslate.stages.state import StreamTable

log = logging.getLogger("livetranslate.pipeline")
# A drain waits this long for streams busy in a call (a decode) before it closes them; the
# launcher waits longer for the drain's answer (launcher.DRAIN_TIMEOUT_S)
DRAIN_WAIT_S = 5.0
SHUTTING_DOWN = "the server is shutting down"


class Stopping:
    """The stopping side of `Pipeline` (dispatch.py), which holds the state it works on."""

    stopping: str
    streams: StreamTable
    sequences: StreamTable
    viewers: Viewers
    revisions: Revisions
    end_sequence: Callable[[int], None] | None
    _watch: Every | None
    _sampler: Sampler | None
    _open: set
    _open_changed: threading.Condition
    _grace_ends: float
    _final_drain: threading.Lock
    _refused_ends: queue.Queue | None

    def open_streams(self) -> list[Stream]:
        raise NotImplementedError

    def report_gauges(self) -> None:
        raise NotImplementedError

    @property
    def refusal(self) -> str:
        """What a new speaker or viewer is told while the server stops."""
        return f"{self.stopping}: connect to another server, or try again in a moment"

    def shutdown(self, wait_s: float = 10.0) -> None:
        """The server stops: every live stream ends (its sequences ended, its session told),
        within `wait_s`; a stream whose worker is stuck in a call is closed without it."""
        self.drain("the server shut down", wait_s, end_sequences=False)
        if self._watch is not None:
            self._watch.stop()
        if self._sampler is not None:
            self._sampler.stop()
            self.report_gauges()

    def refuse(self, reason: str = SHUTTING_DOWN) -> None:
        """From now on new speakers and viewers are refused (told why, and to go elsewhere);
        the live streams and viewers carry on."""
        self.stopping = self.stopping or reason

    def await_streams(self, grace_s: float) -> bool:
        """Waits until no stream is open, for `grace_s` at most, or less when another drain
        asks for a shorter grace (a second Ctrl-C). True when none is left."""
        with self._open_changed:
            self._grace_ends = min(self._grace_ends, time.monotonic() + max(0.0, grace_s))
            self._open_changed.notify_all()  # a drain already waiting sees the shorter grace
            while self._open and time.monotonic() < self._grace_ends:
                self._open_changed.wait(self._grace_ends - time.monotonic())
            return not self._open

    def drain(
        self, reason: str = SHUTTING_DOWN, wait_s: float = 10.0, end_sequences: bool = True, grace_s: float = 0.0
    ) -> int:
        """Ends everything this pipeline holds, so that a stopping Triton finds nothing in
        flight and unloads it at once. New streams and viewers are refused at once; the live
        streams get `grace_s` to end on their own; then every viewer gets an `end` saying why,
        every stream left is abandoned to move on (its vad and enhance sequences ended; with a
        store shared by several servers its session is handed over, so that its client goes
        on on another one), and every sequence Triton still holds open for this model is ended
        as its client would (`end_sequence`). Returns how many sequences it ended."""
        self.refuse(reason)
        self.await_streams(grace_s)
        with self._final_drain:
            return self._end_everything(reason, wait_s, end_sequences)

    def _end_everything(self, reason: str, wait_s: float, end_sequences: bool) -> int:
        self.viewers.stop(reason)
        self.revisions.stop()  # late viewers' lines: the next server's work
        for stream_id in self.streams.keys():
            stream = self.streams.pop(stream_id)
            if stream is not None:
                stream.abandon(reason, move_on=True)
        deadline = time.monotonic() + wait_s
        for stream in self.open_streams():
            if not stream.join(max(0.0, deadline - time.monotonic())):
                log.warning("stream %s: workers still busy at shutdown; closed without them", stream.stream_id)
                stream.close()
        if not (end_sequences and self.end_sequence):
            return 0
        return sum(self._end_open_sequence(sequence_id) for sequence_id in self.sequences.keys())

    def _end_open_sequence(self, sequence_id: int) -> bool:
        """Ends a sequence Triton holds open for this model, as its client would. False when
        it was ended already (by a drain, a refusal or its client) or could not be."""
        if self.sequences.pop(sequence_id) is None:
            return False
        if self.end_sequence is None:
            return False
        try:
            self.end_sequence(sequence_id)
            return True
        except Exception as exc:  # e.g. Triton had dropped it as idle already
            log.warning("sequence %s: could not end it: %s", sequence_id, exc)
            return False

    def _drain_request(self, reply: Reply, internal: bool, grace: np.ndarray | None) -> None:
        if not internal:
            raise ProtocolError(f"{DRAIN} is for the server's own launcher")
        grace_s = float(grace.reshape(-1)[0]) if grace is not None and grace.size else 0.0
        if not grace_s >= 0.0:  # NaN too
            raise ProtocolError(f"{DRAIN_GRACE_S} must be a number of seconds, 0 or more")
        self.refuse()  # at once, before this request's answer: the launcher reports it so
        live = len(self.open_streams())
        reply.send(
            Event(
                EventKind.PARTIAL,
                text=f"refusing new speakers and viewers; {live} stream(s) live, ending them within {grace_s:g} s",
            )
        )

        def run():  # a thread: the drain ends sequences through this model's own execute()
            try:
                ended = self.drain(wait_s=DRAIN_WAIT_S, grace_s=grace_s)
                reply.send(Event(EventKind.END, text=f"drained: {ended} sequences ended"))
            except Exception as exc:
                log.exception("drain failed")
                reply.send(Event(EventKind.END, error=f"drain failed: {exc}"))
            finally:
                reply.close()

        threading.Thread(target=run, name="drain", daemon=True).start()

    def _end_refused(self, sequence_id: int) -> None:
        """A refused sequence is ended at once, as its client would: Triton would otherwise
        hold it until it idles out (one that came after a drain ended the others, until its
        exit timeout; a client opening streams in a loop, in their thousands). One worker
        thread: the end comes through this model's own execute()."""
        if self.end_sequence is None:
            return
        with self._open_changed:
            if self._refused_ends is None:
                self._refused_ends = queue.Queue()
                threading.Thread(target=self._end_refused_ones, name="end-refused", daemon=True).start()
        self._refused_ends.put(sequence_id)

    def _end_refused_ones(self) -> None:
        refused = self._refused_ends
        assert refused is not None  # made before this thread starts
        while True:
            self._end_open_sequence(refused.get())
