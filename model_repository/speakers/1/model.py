"""speakers: thin Triton glue over livetranslate.stages.speakers.encoder."""

from livetranslate import protocol as P
from livetranslate.stages.speakers.encoder import SpeakerEncoder
from livetranslate.triton import codecs, glue
from livetranslate.weights.catalog import resolve


class TritonPythonModel:
    def initialize(self, args):
        self.encoder = SpeakerEncoder.load(resolve(glue.parameters(args)["model"]))

    def execute(self, requests):
        return glue.respond_each(requests, self._embed, P.SPEAKERS_MODEL)

    def _embed(self, request):
        return codecs.embedding_to_tensors(
            self.encoder.embed_utterance(codecs.speaker_audio_from(glue.inputs(request)))
        )
