"""sessions: thin Triton glue over livetranslate.store.SessionStore (read side)."""

from livetranslate import protocol as P
from livetranslate.store import open_store, session_report
from livetranslate.triton import codecs, glue


class TritonPythonModel:
    def initialize(self, args):
        self.store = open_store()

    def execute(self, requests):
        return glue.respond_each(requests, self._report, P.SESSIONS, internal=False)  # public, read-only

    def _report(self, request):
        get = glue.inputs(request)
        report = session_report(self.store, codecs.text(get, P.ACTION), codecs.text(get, P.SESSION))
        return {P.RESULT: codecs.text_tensor(report)}
