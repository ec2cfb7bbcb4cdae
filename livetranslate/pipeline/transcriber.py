"""The audio worker of a stream: a chunk goes PCM16 -> float -> 16 kHz -> the stream's audio
history -> `vad` -> each utterance it closed, cut from the history -> `whisper` (with the
recent audio and the committed text as context: streaming.py) -> speech filter ->
`transcript` on that chunk's reply -> the translation worker. While an utterance is open,
each chunk hands the partial worker a snapshot of it."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import time

from livetranslate.audio import StreamResampler, pcm16_to_float
from livetranslate.numbers import written_numbers
from livetranslate.pipeline.mailboxes import AudioInbox, Latest
from livetranslate.pipeline.messages import (
    Abandon,
    Chunk,
    Finish,
    Idle,
    KeepAlive,
    LastChunk,
    LiveUtterance,
    Silence,
    Speaking,
    Stop,
    Translate,
)
from livetranslate.pipeline.options import StreamContext
from livetranslate.pipeline.replies import SharedReply
from livetranslate.pipeline.sequences import VadSequence
from livetranslate.pipeline.streaming import AudioHistory, Plan, StreamDecoder
from livetranslate.pipeline.word_times import words_for_text
from livetranslate.protocol import SAMPLE_RATE_HZ, Event, EventKind, ProtocolError
from livetranslate.stages.vad import Ongoing, Utterance
from livetranslate.stages.whisper import Transcription

log = logging.getLogger("livetranslate.pipeline")

# After a transcript, while the speaker stays silent, `enhance` hears the stream's clock once a
# second (for up to 10 s), so a pause ends its window without waiting for the next utterance.
# The clock it hears lags by TICK_MARGIN_S: the VAD opens an utterance about 0.3 s into speech
# and starts it 0.3 s before (its padding ring), so a pause is only certain up to then.
TICK_EVERY_S, TICKS_AFTER_SPEECH, TICK_MARGIN_S = 1.0, 10, 0.6
EMBED_TIMEOUT_S = 10.0  # a speaker's embedding later than this: the transcript goes without a label


class Transcriber:
    def __init__(self, ctx: StreamContext, inbox: AudioInbox, partials: Latest | None, translator: queue.Queue | None):
        self._ctx, self._inbox, self._partials, self._translator = ctx, inbox, partials, translator
        self._resampler = StreamResampler(ctx.options.sample_rate)
        self._audio = AudioHistory()  # the 16 kHz audio handed to vad, recent part
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=2000)
        self._decoder = StreamDecoder(
            ctx.popts.decode, ctx.options.whisper_language, ctx.options.glossary.whisper_hint()
        )
        self._clock = ctx.shared.clock
        self._vad = VadSequence(ctx.stages, ctx.sequence_id, self._clock, ctx.popts.keepalive_s)
        self._utterance: LiveUtterance | None = None  # the one open, while partials are on
        self._ticks: list[float] = []  # audio times (session clock) at which to tick enhance
        self._told = self._clock()  # when the translation worker last got a message
        self._words_until = ctx.t0  # where the last transcript's last word ended (session clock)
        # who speaks, with speaker labels on: the session's speakers so far (labels S1, S2, ...)
        hint = ctx.options.num_speakers or None
        self._voices = ctx.shared.voices.of(ctx.options.session, hint) if ctx.options.speakers else None

    @property
    def audio_end_s(self) -> float:
        """The end of the audio received so far, on the session's clock."""
        return self._ctx.t0 + self._audio.end / SAMPLE_RATE_HZ

    def run(self) -> SharedReply | None:
        """Until the client's last chunk (returns its reply, held for `end`, when no other
        worker will answer after it) or an Abandon. Ends the vad sequence on either path."""
        wake_s = max(0.05, self._ctx.popts.keepalive_s / 2)
        try:
            while True:
                message = self._inbox.get(timeout=wake_s)
                if isinstance(message, Abandon):
                    self._stop_others(message if self._translator is not None else None)
                    return None
                if isinstance(message, Idle):
                    self._idle()
                elif isinstance(message, LastChunk):
                    return self._chunk(message, last=True)
                else:
                    self._chunk(message, last=False)
        finally:
            self._vad.abandon()  # ended already by a last chunk that went well

    def _idle(self) -> None:
        """No request for a while: the client may be gone (then the stream abandons itself,
        even when no other request comes to expire it), else the stages' sequences are touched."""
        ttl_s = self._ctx.popts.session_ttl_s
        if self._clock() - self._inbox.last_put >= ttl_s:
            self._ctx.abandon("the speaker's stream stopped sending and timed out")
        else:
            self._keep_alive(None, speaking=False)

    def _stop_others(self, end: Abandon | Finish | None) -> None:
        """The partial worker stops; the translation worker gets `end` (if it runs)."""
        self._close_utterance()
        if self._partials is not None:
            self._drop(self._partials.offer(Stop()))
        if end is not None:
            self._tell(end)

    def _chunk(self, chunk: Chunk, last: bool) -> SharedReply | None:
        reply = SharedReply(chunk.reply)
        try:
            if self._ctx.failure():
                raise ProtocolError(self._ctx.failure())
            self._process(chunk, reply, last)
        except Exception as exc:  # one bad chunk must not end the stream
            log.exception("stream %s: chunk failed", self._ctx.stream_id)
            reply.send(Event(EventKind.ERROR, f"internal error: {exc}"))
        finally:
            final = None
            if last and self._translator is not None:  # `end` goes after the translations still being made
                self._stop_others(Finish(reply.hold()))
            elif last:
                self._stop_others(None)
                final = reply.hold()
            reply.close()
        return final

    def _process(self, chunk: Chunk, reply: SharedReply, last: bool) -> None:
        audio = self._resampler.process(pcm16_to_float(chunk.audio), last=last)
        self._audio.append(audio)
        self._arrivals.append((self._audio.end, chunk.arrived))
        found = self._vad.feed(audio, end=last)
        for utterance in found.closed:
            self._close_utterance()
            self._transcribe(utterance, reply)
        if not last:
            self._offer_partial(found.ongoing, reply, chunk.arrived)
            self._keep_alive(reply, speaking=found.ongoing is not None)

    # --- transcripts ------------------------------------------------------------------
    def _decode(self, utterance: Utterance) -> tuple[Plan, Transcription, str]:
        """Whisper's answer for a closed utterance (and the request it answers) and its new words."""
        decoder, start, end = self._decoder, utterance.start_sample, utterance.end_sample
        plan = decoder.plan(self._audio, start, end)
        speech_s = (utterance.speech_end_sample - start) / SAMPLE_RATE_HZ
        with self._ctx.shared.load.decoding(final=True):
            result = self._ctx.stages.whisper(plan.request)
            if decoder.retry_without_context(plan, result.text, speech_s):
                alone = decoder.plan(self._audio, start, end, use_context=False)
                again = self._ctx.stages.whisper(alone.request)
                if decoder.prefer_retry(plan, result.text, alone, again.text):
                    plan, result = alone, again
        return plan, result, decoder.clean(plan, result.text)

    def _transcribe(self, utterance: Utterance, reply: SharedReply) -> None:
        ctx = self._ctx
        voice = self._embed(utterance)  # the speaker's embedding is made while Whisper decodes
        try:
            plan, result, text = self._decode(utterance)
        except Exception as exc:
            reply.send(
                Event(EventKind.ERROR, f"whisper failed on {utterance.start_s:.2f}-{utterance.end_s:.2f} s: {exc}")
            )
            return
        keep = ctx.popts.speech_filter.keep(result) and text
        # a dropped utterance is committed empty: later context windows never span it
        self._decoder.commit(utterance.start_sample, utterance.end_sample, text if keep else "")
        if not keep:
            log.info(
                "stream %s: dropped %r (no_speech %.2f, logprob %.2f)",
                ctx.stream_id,
                result.text,
                result.no_speech_prob,
                result.avg_logprob,
            )
            return
        spoken_at = self._arrival_of(utterance.speech_end_sample)
        text = written_numbers(text, result.language)
        start_s, end_s = ctx.t0 + utterance.start_s, ctx.t0 + utterance.end_s
        heard_from = ctx.t0 + plan.audio_start / SAMPLE_RATE_HZ  # where Whisper's word times count from
        # Words may lie before the utterance's start: with context, Whisper hears the audio before
        # it, and gives this transcript words said in the previous utterance's time after that
        # utterance's text ended. They keep their times, after the previous transcript's words.
        words = words_for_text(text, result.words, heard_from, (max(heard_from, self._words_until), end_s))
        if words:
            self._words_until = words[-1].end_s
        speaker, index = self._speaker_of(voice)
        segment_id = ctx.shared.ids.take(ctx.options.session)
        transcript = Event(
            EventKind.TRANSCRIPT,
            text,
            segment_id=segment_id,
            start_s=start_s,
            end_s=end_s,
            language=result.language,
            latency_ms=(time.monotonic() - spoken_at) * 1000,
            words=words,
            speaker=speaker,
        )
        reply.send(transcript)
        if self._translator is not None:
            self._tell(Translate(transcript, spoken_at, reply.hold()))
            self._ticks = [transcript.end_s + TICK_EVERY_S * (i + 1) for i in range(TICKS_AFTER_SPEECH)]
        if speaker and self._voices is not None:  # its translation is under way already
            self._voices.sent(index, segment_id)
            self._recheck_speakers(reply, transcript.end_s)

    def _embed(self, utterance: Utterance) -> tuple[concurrent.futures.Future, float] | None:
        """The `speakers` model's embedding of the utterance's voice, asked for now on the
        pipeline's speaker threads (with labels on), and the utterance's length."""
        if self._voices is None:
            return None
        audio = self._audio.slice(utterance.start_sample, max(utterance.speech_end_sample, utterance.start_sample + 1))
        return self._ctx.shared.embedder.submit(self._ctx.stages.embed_speaker, audio), len(audio) / SAMPLE_RATE_HZ

    def _speaker_of(self, voice: tuple[concurrent.futures.Future, float] | None) -> tuple[str, int]:
        """The utterance's speaker label and its index among the session's labelled utterances
        ("" with labels off, or when the speakers model failed: the transcript goes out
        without one rather than late or not at all)."""
        if voice is None or self._voices is None:
            return "", -1
        pending, seconds = voice
        try:
            return self._voices.assign(pending.result(timeout=EMBED_TIMEOUT_S), seconds)
        except Exception as exc:
            log.warning("stream %s: no speaker label: %s", self._ctx.stream_id, exc)
            return "", -1

    def _recheck_speakers(self, reply: SharedReply, now_s: float) -> None:
        """After a transcript went out (it never waits for this): the stream's speakers looked
        at again with what they said so far; each earlier line whose speaker changed (two
        speakers merged, a line moved) gets a `speaker_update`, which every surface follows."""
        assert self._voices is not None
        try:
            changed = self._voices.recheck()
        except Exception as exc:  # the labels stay as they were
            log.warning("stream %s: re-checking the speakers failed: %s", self._ctx.stream_id, exc)
            return
        for segment_id, label in changed:
            reply.send(Event(EventKind.SPEAKER_UPDATE, segment_id=segment_id, end_s=now_s, speaker=label))

    def _arrival_of(self, sample: int) -> float:
        """When the chunk holding this sample reached the server."""
        for end, arrived in self._arrivals:
            if end >= sample:
                return arrived
        return self._arrivals[-1][1] if self._arrivals else time.monotonic()

    # --- partials ---------------------------------------------------------------------
    def _offer_partial(self, ongoing: Ongoing | None, reply: SharedReply, arrived: float) -> None:
        if self._partials is None:
            return
        if ongoing is None:
            self._close_utterance()
            self._drop(self._partials.withdraw())
            return
        if self._utterance is None or self._utterance.start_sample != ongoing.start_sample:
            self._close_utterance()
            self._utterance = LiveUtterance(ongoing.start_sample)
        if self._inbox.waiting():  # this stream's audio is queued: under load partials go first
            self._drop(self._partials.withdraw())
            return
        self._drop(
            self._partials.offer(
                Speaking(
                    self._utterance,
                    ongoing.speech_end_sample,
                    self._audio.end,
                    self._audio.view(),
                    self._decoder.snapshot(),
                    arrived,
                    reply.hold(),
                )
            )
        )

    def _close_utterance(self) -> None:
        if self._utterance is not None:
            self._utterance.close()
            self._utterance = None

    @staticmethod
    def _drop(message) -> None:
        """A message that will not be handled any more lets go of its reply."""
        if getattr(message, "reply", None) is not None:
            message.reply.close()

    # --- the translation worker's clock, and keeping the stages' sequences alive ---------
    def _tell(self, message) -> None:
        if self._translator is None:  # a stream without translation tells nobody
            return
        self._translator.put(message)
        self._told = self._clock()

    def _keep_alive(self, reply: SharedReply | None, speaking: bool) -> None:
        if self._vad.due:
            try:
                self._vad.touch()
            except Exception as exc:
                log.warning("stream %s: keeping its vad sequence alive failed: %s", self._ctx.stream_id, exc)
        if self._translator is None:
            return
        if speaking:  # the next transcript sets new ticks
            self._ticks = []
        elif self._ticks and reply is not None and self.audio_end_s >= self._ticks[0]:
            now = self.audio_end_s
            self._ticks = [t for t in self._ticks if t > now]
            self._tell(Silence(now - TICK_MARGIN_S, reply.hold()))
            return
        if self._clock() - self._told >= self._ctx.popts.keepalive_s:
            self._tell(KeepAlive(reply.hold() if reply is not None else None))
