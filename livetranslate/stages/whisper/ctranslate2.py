"""faster-whisper on CTranslate2: the CPU default (int8), CUDA too.

A batch of requests (several live streams, gathered by Triton's dynamic batcher) is
decoded together: one encoder pass over all their 30 s windows, one batched beam search
with each request's own prompt, prefix and language. faster-whisper's `transcribe()`
takes one audio at a time, so the batch path calls its CTranslate2 model directly and
reuses faster-whisper's feature extractor, tokenizer and prompt layout.
"""

from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from livetranslate.protocol import SAMPLE_RATE_HZ, Word
from livetranslate.stages.whisper import (
    AsrOptions,
    AsrRequest,
    Transcription,
    WhisperEngine,
    decode_again,
)
from livetranslate.stages.whisper.alignment import snap_to_speech, word_times

log = logging.getLogger("livetranslate.stages.whisper")

MAX_WINDOW_S = 30.0  # Whisper's encoder sees 30 s; a longer request keeps its last 30 s
ENCODER_TAIL_S = 5.0  # silence the encoder hears after the audio, at least (up to 30 s in all)


class CTranslate2Engine(WhisperEngine):
    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        options: AsrOptions = AsrOptions(),
    ):
        from faster_whisper import WhisperModel

        model_path = Path(model_path)
        if not (model_path / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 Whisper model in {model_path}: run `livetranslate models fetch`")
        self.options = options
        self.model = WhisperModel(
            str(model_path),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )
        self._tokenizers: dict[str, object] = {}

    def transcribe(self, requests: list[AsrRequest]) -> list[Transcription]:
        if not requests:
            return []
        results = self._decode_batch(requests)
        # Whisper, unsure of the audio, tends to repeat its prompt: decode those again without it.
        again = {
            i: retry
            for i, (r, out) in enumerate(zip(requests, results))
            if (retry := decode_again(r, out.text)) is not None
        }
        if again:
            for i, result in zip(again, self._decode_batch(list(again.values()))):
                results[i] = result
        return results

    # --- batch decode -------------------------------------------------------------------
    def _decode_batch(self, requests: list[AsrRequest]) -> list[Transcription]:
        """Groups by beam size (one generate call takes one) and decodes each group at once."""
        results: dict[int, Transcription] = {}  # by request: each is in one group
        groups: dict[int, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(r.beam_size or self.options.beam_size, []).append(i)
        for beam, indices in groups.items():
            for i, result in zip(indices, self._decode_group([requests[i] for i in indices], beam)):
                results[i] = result
        return [results[i] for i in range(len(requests))]

    def _decode_group(self, requests: list[AsrRequest], beam_size: int) -> list[Transcription]:
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_ctranslate2_storage

        whisper = self.model
        window = int(MAX_WINDOW_S * whisper.feature_extractor.sampling_rate)
        mels = [whisper.feature_extractor(np.asarray(r.audio, np.float32)[-window:]) for r in requests]
        # a batch shares one encoder input length: the longest any of its requests needs
        frames = max(
            encoder_frames(m.shape[-1], self._min_window_s(r), whisper.feature_extractor.nb_max_frames)
            for m, r in zip(mels, requests)
        )
        features = np.stack([pad_or_trim(m, frames) for m in mels])
        encoded = whisper.model.encode(get_ctranslate2_storage(features), to_cpu=False)
        languages = [r.language for r in requests]
        if whisper.model.is_multilingual and not all(languages):
            detected = whisper.model.detect_language(encoded)
            languages = [lang or detected[i][0][0][2:-2] for i, lang in enumerate(languages)]
        tokenizers = [self._tokenizer(lang or "en") for lang in languages]
        prompts = [self._prompt(tok, r) for tok, r in zip(tokenizers, requests)]
        # CTranslate2's generate needs <|startoftranscript|> at the same position in every
        # prompt of a call, so requests with different amounts of previous text (streams at
        # different points of their talk) are generated in groups; the encoder pass above
        # stays shared.
        groups: dict[int, list[int]] = {}
        for i, (tok, prompt) in enumerate(zip(tokenizers, prompts)):
            groups.setdefault(prompt.index(tok.sot), []).append(i)
        outputs: list = [None] * len(requests)
        for indices in groups.values():
            part = encoded if len(groups) == 1 else _rows(encoded, indices)
            for i, out in zip(indices, self._generate(part, [prompts[i] for i in indices], tokenizers[0], beam_size)):
                outputs[i] = out
        heard = [min(m.shape[-1], frames) for m in mels]  # mel frames of each request's own audio
        offsets = [max(0, len(r.audio) - window) / whisper.feature_extractor.sampling_rate for r in requests]
        words = self._align(encoded, requests, tokenizers, outputs, heard, offsets)
        results = []
        for i, (request, tok, lang, out) in enumerate(zip(requests, tokenizers, languages, outputs)):
            tokens = out.sequences_ids[0]
            text = tok.decode(tokens).strip()
            if request.prefix and text.startswith(request.prefix.strip()):
                text = text[len(request.prefix.strip()) :].strip()  # in case a build returns the prefix
            avg_logprob = out.scores[0] * len(tokens) / (len(tokens) + 1)
            results.append(
                Transcription(
                    text=text,
                    language=lang,
                    no_speech_prob=float(out.no_speech_prob),
                    avg_logprob=float(avg_logprob) if tokens else -10.0,
                    compression_ratio=_compression_ratio(text),
                    words=words.get(i, ()),
                )
            )
        return results

    def _align(self, encoded, requests, tokenizers, outputs, heard, offsets) -> dict[int, tuple[Word, ...]]:
        """The words and their times of the requests that ask (word_times), by request: one
        `align` call per language (the start sequence names it), on the encoder output the
        decode used. Prefix tokens are aligned too (the audio starts with them) and dropped."""
        wanted: dict[tuple[int, ...], list[int]] = {}
        for i, (r, tok, out) in enumerate(zip(requests, tokenizers, outputs)):
            if r.word_times and any(t < tok.eot for t in out.sequences_ids[0]):
                wanted.setdefault(tuple(tok.sot_sequence), []).append(i)
        found: dict[int, tuple[Word, ...]] = {}
        for indices in wanted.values():
            tok = tokenizers[indices[0]]
            prefixes = [self._prefix_tokens(tok, requests[i].prefix) for i in indices]
            texts = [p + [t for t in outputs[i].sequences_ids[0] if t < tok.eot] for i, p in zip(indices, prefixes)]
            part = encoded if len(indices) == len(requests) else _rows(encoded, indices)
            try:
                aligned = self.model.model.align(
                    part, tok.sot_sequence, texts, [heard[i] for i in indices], median_filter_width=7
                )
            except Exception as exc:  # word times are extra: the transcripts go out without them
                log.warning("word alignment failed, transcripts without word times: %s", exc)
                continue
            for i, prefix, text, result in zip(indices, prefixes, texts, aligned):
                split, split_tokens = tok.split_to_word_tokens(text + [tok.eot])
                timed = word_times(
                    split,
                    split_tokens,
                    result.alignments,
                    result.text_token_probs,
                    skip_tokens=len(prefix),
                    offset_s=offsets[i],
                )
                audio = np.asarray(requests[i].audio, np.float32)
                found[i] = snap_to_speech(
                    timed, audio[-int(MAX_WINDOW_S * SAMPLE_RATE_HZ) :], SAMPLE_RATE_HZ, offsets[i]
                )
        return found

    def _prefix_tokens(self, tokenizer, prefix: str) -> list[int]:
        """The prefix as get_prompt puts it after <|startoftranscript|> (and as long)."""
        if not prefix.strip():
            return []
        return tokenizer.encode(" " + prefix.strip())[: self.model.max_length // 2 - 1]

    def _generate(self, encoded, prompts: list[list[int]], tokenizer, beam_size: int) -> list:
        from faster_whisper.transcribe import get_suppressed_tokens

        return self.model.model.generate(
            encoded,
            prompts,
            beam_size=beam_size,
            length_penalty=1.0,
            max_length=self.model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        )

    def _min_window_s(self, request: AsrRequest) -> float:
        """A shorter encoder window costs nothing when the audio starts with committed text
        (a `prefix`), and accuracy when it does not (AsrOptions)."""
        return self.options.min_window_s if request.prefix else self.options.min_window_alone_s

    def _tokenizer(self, language: str):
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            multilingual = self.model.model.is_multilingual
            self._tokenizers[language] = Tokenizer(
                self.model.hf_tokenizer, multilingual, task="transcribe", language=language if multilingual else None
            )
        return self._tokenizers[language]

    def _prompt(self, tokenizer, request: AsrRequest) -> list[int]:
        previous = tokenizer.encode(" " + request.previous_text()) if request.previous_text() else []
        return self.model.get_prompt(tokenizer, previous, without_timestamps=True, prefix=request.prefix or None)


def encoder_frames(audio_frames: int, min_window_s: float, max_frames: int = 3000) -> int:
    """Mel frames (100 per second) the encoder hears for audio of `audio_frames`: padded to
    at least `min_window_s` and ENCODER_TAIL_S past its end, at most Whisper's 30 s."""
    wanted = max(int(min_window_s * 100), audio_frames + int(ENCODER_TAIL_S * 100))
    return min(max_frames, wanted)


def _rows(encoded, indices: list[int]):
    """Some rows of the encoder output (a CPU StorageView) as a new StorageView."""
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[indices]))


def _compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 1.0
