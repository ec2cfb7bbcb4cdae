"""whisper (and whisper_partial, which links here): thin Triton glue over livetranslate.asr."""

import numpy as np

from livetranslate import priority, triton
from livetranslate.asr import AsrOptions, AsrRequest, create_engine
from livetranslate.models import resolve


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        cpu_priority = params.get("cpu_priority", "normal")
        priority.apply(cpu_priority)  # before the engine starts its threads: they inherit it
        self.engine = create_engine(
            params["engine"],
            resolve(params["model"]),
            device=params.get("device", "cpu"),
            compute_type=params.get("compute_type", "int8"),
            cpu_threads=int(params.get("cpu_threads", "2")),
            options=AsrOptions(beam_size=int(params.get("beam_size", "5")),
                               min_window_s=float(params.get("min_window_s", AsrOptions.min_window_s)),
                               min_window_alone_s=float(params.get("min_window_alone_s",
                                                                   AsrOptions.min_window_alone_s))),
        )
        if cpu_priority != "normal":
            # the engine's compute threads start at the first decode: start them now, then
            # make sure every thread of this process has the priority
            self.engine.transcribe([AsrRequest(np.zeros(16000, np.float32), "en", beam_size=1)])
            triton.log_info(f"{args['model_name']} runs at {priority.apply(cpu_priority)}")

    def execute(self, requests):
        responses, valid = [None] * len(requests), []
        for i, request in enumerate(requests):
            try:
                valid.append((i, triton.asr_request_from(request)))
            except ValueError as exc:
                responses[i] = triton.error_response(str(exc))
        if valid:
            try:
                results = self.engine.transcribe([r for _, r in valid])
                for (i, _), result in zip(valid, results):
                    responses[i] = triton.response(triton.transcription_to_tensors(result))
            except Exception as exc:
                for i, _ in valid:
                    responses[i] = triton.error_response(f"whisper failed: {exc}")
        return responses
