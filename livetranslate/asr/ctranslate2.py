"""faster-whisper on CTranslate2: the CPU default (int8), CUDA too."""

from __future__ import annotations

from pathlib import Path

from livetranslate.asr import AsrOptions, AsrRequest, Transcription, WhisperEngine, copies_prompt


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
            raise FileNotFoundError(
                f"no CTranslate2 Whisper model in {model_path}: run `livetranslate models fetch`"
            )
        self.options = options
        self.model = WhisperModel(
            str(model_path), device=device, compute_type=compute_type, cpu_threads=cpu_threads,
            local_files_only=True,
        )

    def transcribe(self, requests: list[AsrRequest]) -> list[Transcription]:
        return [self._one(r) for r in requests]

    def _one(self, request: AsrRequest) -> Transcription:
        result = self._decode(request.audio, request.language, request.prompt)
        if request.prompt and copies_prompt(result.text, request.prompt):
            result = self._decode(request.audio, request.language, "")
        return result

    def _decode(self, audio, language: str, prompt: str) -> Transcription:
        segments, info = self.model.transcribe(
            audio,
            language=language or None,
            task="transcribe",
            beam_size=self.options.beam_size,
            temperature=self.options.temperature,
            initial_prompt=prompt or None,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
            # Filtering is ours (SpeechFilter), done on the whole utterance.
            no_speech_threshold=None,
            log_prob_threshold=None,
            compression_ratio_threshold=None,
        )
        segments = list(segments)
        if not segments:
            return Transcription("", info.language, 1.0, -10.0)
        tokens = [max(1, len(s.tokens)) for s in segments]
        return Transcription(
            text=" ".join(s.text.strip() for s in segments).strip(),
            language=info.language,
            no_speech_prob=float(max(s.no_speech_prob for s in segments)),
            avg_logprob=float(sum(s.avg_logprob * n for s, n in zip(segments, tokens)) / sum(tokens)),
            compression_ratio=float(max(s.compression_ratio for s in segments)),
        )
