"""The `pipeline` model's logic (model_repository/pipeline), the code that runs inside it:

dispatch.py     requests routed: START opens a Stream, audio and END go to it, SUBSCRIBE to viewers
shutdown.py     how it stops: refusing, the grace, ending everything; refused starts' sequences
stream.py       one speaker stream: owns everything of it, one close() on every path
transcriber.py  its audio worker: audio -> vad -> whisper -> transcripts
partials.py     its partial worker: the open utterance -> partials
translator.py   its translation worker: transcripts -> translations, enhanced translations
messages.py     what the workers hand each other
mailboxes.py    where messages wait: the audio worker's inbox, the partial worker's mailbox
sequences.py    the sequences a stream holds in `vad` and `enhance`, kept alive, ended explicitly
replies.py      a request's response channel, shared by the workers
sessions.py     segment ids and the stored session of a stream
viewers.py      viewers of a session
guards.py       admission limits, the LLM breaker, the Whisper load meter
stages.py       the stage interface and its in-process set (the Triton set: livetranslate.triton.bls)
options.py      the model's options and what its streams share
streaming.py    how a stream's speech becomes Whisper requests, and answers committed text
metrics.py      what it reports to Prometheus, through one seam
"""

from livetranslate.pipeline.dispatch import Pipeline
from livetranslate.pipeline.guards import (
    Admission,
    Limits,
    LlmBreaker,
    LlmUnavailable,
    ServerFull,
    WhisperLoad,
)
from livetranslate.pipeline.options import PipelineOptions
from livetranslate.pipeline.sessions import SegmentIds
from livetranslate.pipeline.stages import LocalStages, Stages
from livetranslate.pipeline.stream import Stream
from livetranslate.pipeline.viewers import follow

__all__ = [
    "Admission",
    "Limits",
    "LlmBreaker",
    "LlmUnavailable",
    "LocalStages",
    "Pipeline",
    "PipelineOptions",
    "SegmentIds",
    "ServerFull",
    "Stages",
    "Stream",
    "WhisperLoad",
    "follow",
]
