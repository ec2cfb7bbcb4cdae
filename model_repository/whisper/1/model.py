"""whisper (and whisper_partial, which links here): thin Triton glue over livetranslate.stages.whisper."""

from livetranslate.stages.whisper import AsrOptions, create_engine
from livetranslate.triton import codecs, glue
from livetranslate.weights.catalog import resolve


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        self.name = args["model_name"]  # whisper or whisper_partial
        self.engine = create_engine(
            params["engine"],
            resolve(params["model"]),
            cpu_priority=params.get("cpu_priority", "normal"),
            device=params.get("device", "cpu"),
            compute_type=params.get("compute_type", "int8"),
            cpu_threads=int(params.get("cpu_threads", "2")),
            options=AsrOptions(
                beam_size=int(params.get("beam_size", "5")),
                min_window_s=float(params.get("min_window_s", AsrOptions.min_window_s)),
                min_window_alone_s=float(params.get("min_window_alone_s", AsrOptions.min_window_alone_s)),
            ),
        )

    def execute(self, requests):
        responses, valid = [None] * len(requests), []
        for i, request in enumerate(requests):
            try:
                glue.check_internal(request, self.name)
                valid.append((i, codecs.asr_request_from(glue.inputs(request))))
            except ValueError as exc:
                responses[i] = glue.error_response(str(exc))
        if valid:
            try:
                results = self.engine.transcribe([r for _, r in valid])
                for (i, _), result in zip(valid, results):
                    responses[i] = glue.response(codecs.transcription_to_tensors(result))
            except Exception as exc:
                for i, _ in valid:
                    responses[i] = glue.error_response(f"whisper failed: {exc}")
        return responses
