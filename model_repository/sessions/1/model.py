"""sessions: thin Triton glue over livetranslate.store.SessionStore (read side)."""

from livetranslate import protocol as P
from livetranslate.keys import Keys
from livetranslate.store import open_store, session_report
from livetranslate.triton import codecs, glue


class TritonPythonModel:
    def initialize(self, args):
        self.store = open_store()
        # named client keys (`serve --keys-file`): a request must carry one of them
        self.keys = Keys.from_environment()

    def execute(self, requests):
        return glue.respond_each(requests, self._report, P.SESSIONS, internal=False)  # public, read-only

    def _report(self, request):
        if self.keys is not None and self.keys.identify(glue.client_key(request)) is None:
            raise P.ProtocolError("this server needs a client key: send yours in the x-livetranslate-key header")
        get = glue.inputs(request)
        report = session_report(self.store, codecs.text(get, P.ACTION), codecs.text(get, P.SESSION))
        return {P.RESULT: codecs.text_tensor(report)}
