"""pipeline: thin Triton glue over livetranslate.pipeline.Pipeline."""

import time
from functools import partial

from livetranslate import triton
from livetranslate.asr import SpeechFilter
from livetranslate.pipeline import Limits, Pipeline, PipelineOptions
from livetranslate.store import Hub, SessionStore
from livetranslate.streaming import DecodeOptions


class TritonPythonModel:
    def initialize(self, args):
        params = triton.parameters(args)
        store = SessionStore(hub=Hub())
        store.recover()  # sessions a crashed server left live
        self.pipeline = Pipeline(
            triton.TritonStages(),
            PipelineOptions(
                session_ttl_s=float(params["ttl_s"]),
                decode=DecodeOptions(
                    policy=params["policy"],
                    context_s=float(params["context_s"]),
                    prompt_segments=int(params["prompt_segments"]),
                    lead_in_s=float(params["lead_in_s"]),
                    partial_interval_s=float(params["partial_interval_s"]),
                ),
                llm_timeout_s=float(params["llm_timeout_s"]),
                limits=Limits(
                    max_streams=int(params["max_streams"]),
                    max_streams_per_session=int(params["max_streams_per_session"]),
                    max_viewers=int(params["max_viewers"]),
                    max_viewers_per_session=int(params["max_viewers_per_session"]),
                    max_queued_s=float(params["max_queued_s"]),
                ),
                speech_filter=SpeechFilter(
                    no_speech_threshold=float(params["no_speech_threshold"]),
                    logprob_threshold=float(params["logprob_threshold"]),
                ),
            ),
            store=store,
        )

    def finalize(self):
        self.pipeline.shutdown()

    def execute(self, requests):
        arrived = time.monotonic()
        for request in requests:
            stream_id, start, end = triton.sequence_flags(request)
            self.pipeline.handle(
                stream_id, start, end, partial(triton.get, request), triton.DecoupledReply(request), arrived
            )
        return None
