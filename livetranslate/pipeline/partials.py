"""The partial worker of a stream: decodes the open utterance now and then into `partial`
events, on `whisper_partial` (idle CPU priority: a final preempts it). It works only from
the snapshots the audio worker hands it (Speaking), and sends only while the utterance is
open (LiveUtterance), so a partial never follows its transcript."""

from __future__ import annotations

import logging
import time

from livetranslate.numbers import written_numbers
from livetranslate.pipeline.mailboxes import Latest
from livetranslate.pipeline.messages import Speaking, Stop
from livetranslate.pipeline.options import StreamContext
from livetranslate.protocol import SAMPLE_RATE_HZ, Event, EventKind

log = logging.getLogger("livetranslate.pipeline")


class PartialWorker:
    """Decodes every `partial_interval_s` of new audio in the open utterance. Skipped while a
    final decode is under way anywhere in this pipeline, while Whisper has been busy for most
    of the last seconds, or once the speaker paused (the final is then due); the audio
    worker also hands nothing over while its own audio queues up: under load partials go
    first."""

    def __init__(self, ctx: StreamContext, mailbox: Latest):
        self._ctx, self._mailbox = ctx, mailbox
        opts = ctx.popts.decode
        self._interval, self._least, self._pause = (
            int(s * SAMPLE_RATE_HZ) for s in (opts.partial_interval_s, opts.partial_min_s, opts.partial_pause_s)
        )
        self._last: tuple[int, int] = (-1, 0)  # (utterance start, audio end) of the last partial

    def run(self) -> None:
        while True:
            message = self._mailbox.take()
            if isinstance(message, Stop):
                return
            try:
                if self._due(message):
                    self._partial(message)
            except Exception:  # a partial is a preview: losing one is harmless
                log.exception("stream %s: partial failed", self._ctx.stream_id)
            finally:
                message.reply.close()

    def _due(self, s: Speaking) -> bool:
        start, end = s.utterance.start_sample, s.audio_end
        since = end - (self._last[1] if self._last[0] == start else start + self._least - self._interval)
        return (
            since >= self._interval
            and end - s.voiced_end <= self._pause
            and self._ctx.shared.load.allows_partial(self._ctx.popts.decode.partial_max_busy)
        )

    def _partial(self, s: Speaking) -> None:
        ctx = self._ctx
        start, end = s.utterance.start_sample, s.audio_end
        self._last = (start, end)
        plan = s.decoder.plan(s.audio, start, end, partial=True)
        with ctx.shared.load.decoding(final=False):
            result = ctx.stages.whisper(plan.request, partial=True)
        text = s.decoder.clean(plan, result.text)
        if not text or not ctx.popts.speech_filter.keep(result):
            return
        s.utterance.send(
            s.reply,
            Event(
                EventKind.PARTIAL,
                written_numbers(text, result.language),
                segment_id=ctx.shared.ids.peek(ctx.options.session),
                start_s=ctx.t0 + start / SAMPLE_RATE_HZ,
                end_s=ctx.t0 + end / SAMPLE_RATE_HZ,
                language=result.language,
                latency_ms=(time.monotonic() - s.arrived) * 1000,
            ),
        )
