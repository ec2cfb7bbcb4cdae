"""An organiser's corrections, speakers' names and summaries in the dashboard's view of a stored
session, without Streamlit: the text each line shows (its correction first) and its quiet mark,
who may correct a line, and what a correction, a name or a summary request says back.

Who may: an organiser is whoever the dashboard itself lets in, a logged-in user (or anyone
on a --no-login dashboard, which listens on loopback only). A share link opens the captions
page of its session and nothing else, so its readers never reach these controls."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from livetranslate import client as lt_client  # looked up at each call: tests stand in for the server
from livetranslate.actions import MAX_EDIT_CHARS, SessionAction
from livetranslate.client import ClientError, PipelineClient
from livetranslate.dashboard.access import AccessError, access_mode
from livetranslate.present import export, readable
from livetranslate.protocol import AUTO_LANGUAGE, Event, EventKind, ProtocolError

log = logging.getLogger(__name__)

MARK_COLUMN = "mark"  # the table's column of quiet marks, there when a line has one
CORRECTED_MARK = f"✎ {readable.CORRECTED_NAME}"  # the captions page's symbol, and its name
CORRECTED_HELP = f"✎ {readable.CORRECTED_NAME}: {readable.CORRECTED_EXPLAINED}"
EDIT_HELP = (
    f"One line of at most {MAX_EDIT_CHARS} characters. The original stays stored beside it; "
    "the correction is translated again and readers still connected see it."
)
SUMMARY_WAIT = "the LLM works in the background, after the live sessions: this can take minutes"


# --- who may correct -------------------------------------------------------------------------
def may_edit(bind_address: str | None, authentication_status, environ: Mapping[str, str] | None = None) -> bool:
    """Whether this visitor of the dashboard is an organiser: on a dashboard with logins, a
    logged-in user (streamlit-authenticator's `authentication_status` is True); on a
    --no-login dashboard (loopback only) whoever uses it. Never anyone else."""
    try:
        mode = access_mode(bind_address, environ)
    except AccessError:
        return False
    return mode == "open" or authentication_status is True


# --- what a line shows -------------------------------------------------------------------------
def table_language(events: list[Event], language: str = "") -> str:
    """The language of the table's translations, as `status.session_rows` chooses it."""
    return language or next((e.language for e in events if e.kind == EventKind.TRANSLATION), "")


def corrected_rows(rows: list[dict], events: list[Event], language: str = "") -> tuple[list[dict], bool]:
    """`session_rows`' rows as readers get them after an organiser's corrections: a corrected
    line shows its corrected transcript and the correction's translation into `language`
    (default: the table's), marked CORRECTED_MARK in MARK_COLUMN; a translation in context
    that covers a corrected line is left out (it follows what was said before the
    correction). Also whether any line is marked (MARK_COLUMN is there only then)."""
    language = table_language(events, language)
    transcripts = {e.segment_id: e for e in events if e.kind == EventKind.TRANSCRIPT}
    spoken, translated = export.corrections(events, transcripts)
    corrected = set(spoken) | {s for s, lang in translated if lang == language}
    stale = _stale_windows(events, language, corrected)
    out = []
    for row in rows:
        seg = row["segment"]
        new = dict(row)
        if seg in spoken:
            new["transcript"] = spoken[seg]
        if (seg, language) in translated:
            new["translation"] = translated[(seg, language)]
        if seg in stale and readable.COMBINED_NAME in new:
            new[readable.COMBINED_NAME] = ""
        out.append(new)
    if not corrected:
        return out, False
    return [_with_mark(row, CORRECTED_MARK if row["segment"] in corrected else "") for row in out], True


def _stale_windows(events: list[Event], language: str, corrected: set[int]) -> set[int]:
    """The rows whose (latest) translation in context covers a corrected line."""
    latest: dict[int, Event] = {}
    for e in events:
        if e.kind == EventKind.ENHANCED and e.language == language:
            latest[e.segment_id] = e
    return {seg for seg, e in latest.items() if set(readable.covered_ids(e)) & corrected}


def _with_mark(row: dict, mark: str) -> dict:
    """The row with its mark after its time (before the texts)."""
    out = {}
    for key, value in row.items():
        out[key] = value
        if key == "time":
            out[MARK_COLUMN] = mark
    out.setdefault(MARK_COLUMN, mark)
    return out


def line_label(row: dict, width: int = 70) -> str:
    """How the line picker shows a line (plain text): its segment id, time and text."""
    text = " ".join(str(row.get("transcript", "")).split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return f"#{row['segment']} · {row.get('time', '')} · {text}"


# --- a correction ---------------------------------------------------------------------------
@dataclass
class Outcome:
    """What a correction or summary request says back: `ok` or not, a headline, the texts
    the server stored (plain text, each "[language] text") and warnings."""

    ok: bool
    headline: str
    stored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:]


def correction_problem(session: str, segment_id, text: str, current: str = "") -> str:
    """Why a correction would be refused before asking the server ("" when it would not):
    the same checks the server makes, and a text that changes nothing."""
    try:
        action = SessionAction("edit", session, segment_id, text if isinstance(text, str) else "")
    except ProtocolError as exc:
        return _sentence(str(exc)) + "."
    if action.text == " ".join(current.split()):
        return "The text is the same as the line's: nothing to save."
    return ""


def edit_outcome(segment_id: int, events: Iterable[Event]) -> Outcome:
    """What the dashboard says after a correction: what the server stored, and the
    translations that failed (the correction itself is stored then all the same)."""
    events = list(events)
    made = [e for e in events if e.kind == EventKind.CORRECTION]
    stored = [f"[{e.language or '?'}] {e.text}" for e in made]
    warnings = [_sentence(e.text or e.error) for e in events if e.kind == EventKind.ERROR]
    into = [e.language for e in made[1:]]
    headline = f"Line #{segment_id} is corrected" + (
        f"; its translation into {', '.join(into)} follows" if into else ""
    )
    return Outcome(True, headline + ".", stored, warnings)


def correct(client: PipelineClient, session: str, segment_id: int, text: str, current: str = "") -> Outcome:
    """Asks the server to correct line `segment_id` of `session` to `text` (`current`: the
    text it shows now). Never raises for what a user can cause: the Outcome says it."""
    problem = correction_problem(session, segment_id, text, current)
    if problem:
        return Outcome(False, f"Not saved: {problem}")
    try:
        events = lt_client.edit(client, session, segment_id, text)
    except (ClientError, ProtocolError) as exc:
        return Outcome(False, f"Not saved: {_sentence(str(exc))}")
    return edit_outcome(segment_id, events)


# --- a speaker's name ------------------------------------------------------------------------
def name_speaker(client: PipelineClient, session: str, label: str, name: str) -> Outcome:
    """Asks the server to call speaker `label` of `session` `name` (`livetranslate speakers
    rename`). Never raises for what a user can cause: the Outcome says it."""
    try:
        SessionAction("rename", session, text=name, speaker=label)  # a plain answer before asking
        named = lt_client.rename(client, session, label, name)
    except (ClientError, ProtocolError) as exc:
        return Outcome(False, f"Not saved: {_sentence(str(exc))}")
    return Outcome(True, f"{named.speaker} is {named.text} from now on, for every reader and in the exports.")


# --- a summary -------------------------------------------------------------------------------
def summary_languages(info: Mapping, events: list[Event], choices: Iterable[str] = ()) -> list[str]:
    """The languages a summary may be asked in, the session's target first (its default),
    then the spoken language, the languages the session has text in, and `choices`."""
    target, spoken = info.get("target_language") or "", info.get("source_language") or ""
    spoken = "" if spoken == AUTO_LANGUAGE else spoken
    found = [target, spoken, *export.languages(events, target), *choices]
    return [lang for lang in dict.fromkeys(found) if lang]


class SummaryJob:
    """One summary request, on a thread of its own: it takes minutes while the page goes on
    refreshing. `connect` makes the client it uses (and closes)."""

    def __init__(self, connect: Callable[[], PipelineClient], session: str, language: str):
        self.connect, self.session, self.language = connect, session, language
        self.started = time.monotonic()
        self.text, self.error = "", ""
        self.done = threading.Event()

    def start(self) -> SummaryJob:
        threading.Thread(target=self._run, name=f"summary-{self.session}", daemon=True).start()
        return self

    def _run(self) -> None:
        try:
            client = self.connect()
            try:
                self.text = lt_client.summarize(client, self.session, self.language).text.strip()
            finally:
                client.close()
        except (ClientError, ProtocolError) as exc:
            self.error = f"No summary: {_sentence(str(exc))}"
        except Exception as exc:  # a thread of its own: say so, the details go to the log
            log.exception("summary of %s failed", self.session)
            self.error = f"No summary: {type(exc).__name__}"
        finally:
            self.done.set()

    @property
    def running(self) -> bool:
        return not self.done.is_set()

    def elapsed_s(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started


@dataclass
class SummaryView:
    """What the summary part of a session's view shows: the summary (plain text), a line
    while one is being made, or why none came."""

    text: str = ""
    running: str = ""
    error: str = ""


def summary_view(events: list[Event], language: str, job: SummaryJob | None, now: float | None = None) -> SummaryView:
    """The summary stored in `language` (the latest), or the one `job` just made; while
    `job` runs, how long it has been at it."""
    stored = export.summary(events, language)
    if job is None:
        return SummaryView(stored)
    if job.running:
        seconds = job.elapsed_s(now)
        return SummaryView(stored, f"Summarizing in {language}… {seconds:.0f} s ({SUMMARY_WAIT})")
    return SummaryView(job.text or stored, error=job.error)
