"""sessions: thin Triton glue over livetranslate.store.SessionStore (read side)."""

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.store import SessionStore, session_report


class TritonPythonModel:
    def initialize(self, args):
        self.store = SessionStore()

    def execute(self, requests):
        return triton.respond_each(requests, self._report, "sessions", internal=False)  # public, read-only

    def _report(self, request):
        report = session_report(self.store, triton.text(request, P.ACTION), triton.text(request, P.SESSION))
        return {P.RESULT: triton.text_tensor(report)}
