"""sessions: thin Triton glue over livetranslate.store.SessionStore (read side)."""

from livetranslate import protocol as P
from livetranslate import triton
from livetranslate.store import SessionStore, session_report


class TritonPythonModel:
    def initialize(self, args):
        self.store = SessionStore()

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                report = session_report(self.store, triton.text(request, P.ACTION),
                                        triton.text(request, P.SESSION))
                responses.append(triton.response({P.RESULT: triton.text_tensor(report)}))
            except Exception as exc:
                responses.append(triton.error_response(f"sessions: {exc}"))
        return responses
