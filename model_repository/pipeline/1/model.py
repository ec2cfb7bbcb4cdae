"""pipeline: thin Triton glue over livetranslate.pipeline.Pipeline."""

import functools
import time

from livetranslate.keys import Keys
from livetranslate.pipeline import Limits, Pipeline, PipelineOptions
from livetranslate.pipeline.options import no_audio_settings
from livetranslate.pipeline.streaming import DecodeOptions
from livetranslate.stages.whisper import SpeechFilter
from livetranslate.store import Hub, open_store
from livetranslate.store.retention import retention
from livetranslate.triton import glue
from livetranslate.triton.bls import TritonStages, end_pipeline_sequence
from livetranslate.triton.metrics import TritonMetrics


class TritonPythonModel:
    def initialize(self, args):
        params = glue.parameters(args)
        store = open_store(hub=Hub(), serving=True)  # local: one server per data directory; or Redis
        store.recover()  # sessions a crashed server left live
        store.prune(**retention(params))
        self.metrics = TritonMetrics()  # on Triton's metrics endpoint, beside its own
        quiet = no_audio_settings(params)
        self.pipeline = Pipeline(
            TritonStages(),
            PipelineOptions(
                # Triton drops the stream's own sequence when its client is silent this long
                session_ttl_s=glue.sequence_idle_s(args),
                no_audio_s=quiet["no_audio_s"],
                no_audio_yield_s=quiet["no_audio_yield_s"],
                keepalive_s=float(params["keepalive_s"]),
                decode=DecodeOptions(
                    policy=params["policy"],
                    context_s=float(params["context_s"]),
                    prompt_segments=int(params["prompt_segments"]),
                    lead_in_s=float(params["lead_in_s"]),
                    partial_interval_s=float(params["partial_interval_s"]),
                    word_times=params.get("word_times", "true").lower() == "true",
                ),
                llm_timeout_s=float(params["llm_timeout_s"]),
                basic_model=params.get("basic_model", "auto"),
                translation_budget_s=float(params.get("translation_budget_s", "4")),
                limits=Limits(
                    max_streams=int(params["max_streams"]),
                    max_streams_per_session=int(params["max_streams_per_session"]),
                    max_viewers=int(params["max_viewers"]),
                    max_viewers_per_session=int(params["max_viewers_per_session"]),
                    max_viewer_languages=int(params["max_viewer_languages"]),
                    max_queued_s=float(params["max_queued_s"]),
                ),
                speech_filter=SpeechFilter(
                    no_speech_threshold=float(params["no_speech_threshold"]),
                    logprob_threshold=float(params["logprob_threshold"]),
                ),
            ),
            store=store,
            end_sequence=end_pipeline_sequence,
            metrics=self.metrics,
            # named client keys (`serve --keys-file`): each client's quota, across servers on one store
            keys=Keys.from_environment(),
            quota=store.client_quota() if hasattr(store, "client_quota") else None,
        )
        self.pipeline.start_watch()  # streams without audio are closed even when nothing else comes

    def finalize(self):
        self.pipeline.shutdown()  # every stream ends its sequences and stores its end
        self.metrics.close()
        self.pipeline.store.shutdown()  # logs closed, the data directory's lock released

    def execute(self, requests):
        arrived = time.monotonic()
        for request in requests:
            stream_id, start, end = glue.sequence_flags(request)
            self.pipeline.handle(
                stream_id,
                start,
                end,
                glue.inputs(request),
                glue.DecoupledReply(request),
                arrived,
                internal=functools.partial(glue.is_internal, request),
                key=functools.partial(glue.client_key, request),
            )
        return None
