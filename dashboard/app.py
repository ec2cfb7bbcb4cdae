"""livetranslate dashboard: follow live and past sessions, start one from an audio file,
watch server health; and the captions page (`/?view=captions&session=NAME&lang=en`) that
coworkers open from a share link. Run with `livetranslate dashboard`.

Nothing shows before a login (the server's API key lives in this process), except the
captions of the one session a share link's token names. Text that came from speech or the
LLM is shown as plain text (set as text by the captions page's component), never as Markdown."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from livetranslate import settings
from livetranslate.actions import MAX_NAME_CHARS
from livetranslate.client import ClientError, PipelineClient, ResilientSession
from livetranslate.dashboard import (
    COOKIE_EXPIRY_DAYS,
    COOKIE_NAME,
    CREDENTIALS_ENV,
    AccessError,
    CredentialsError,
    Endpoints,
    UploadedAudio,
    UploadError,
    access_mode,
    cookie_key,
    delays,
    escape_markdown,
    fetch_metrics,
    health,
    load_credentials,
    max_upload_mb,
    model_problems,
    rates,
    session_rows,
    stage_table,
)
from livetranslate.dashboard.followers import Followers
from livetranslate.dashboard.revisions import (
    CORRECTED_HELP,
    CORRECTED_MARK,
    EDIT_HELP,
    SummaryJob,
    correct,
    corrected_rows,
    line_label,
    may_edit,
    name_speaker,
    summary_languages,
    summary_view,
)
from livetranslate.dashboard.status import address_params, session_from_address, session_label
from livetranslate.dashboard.uploads import (
    DEFAULT_SPOKEN,
    DEFAULT_TARGET,
    SPOKEN_LANGUAGES,
    TARGET_LANGUAGES,
    language_label,
    upload_session,
)
from livetranslate.present import readable
from livetranslate.present.captions import COMPONENT_DIR, page_css, session_problem, text_size
from livetranslate.present.captions_feed import PageFeed
from livetranslate.present.export import export
from livetranslate.present.speakers import speaker_times
from livetranslate.protocol import AUTO_LANGUAGE, EventKind, ProtocolError, SessionOptions
from livetranslate.share import CAPTIONS_VIEW, STYLES, share_link, share_token, token_valid

# `livetranslate dashboard` hands its settings over in a file: `app.py -- --settings FILE`
if "--settings" in sys.argv[1:-1]:
    settings.use_handoff(sys.argv[sys.argv.index("--settings") + 1])
# how often a captions page takes the newest text: one small rerun each, for every open page
CAPTIONS_REFRESH_S = settings.get("LIVETRANSLATE_CAPTIONS_REFRESH_S")
IDLE_REFRESH_S = 2.0  # the same while no session is live there
PAGES = ("Sessions", "New session from a file")

st.set_page_config(page_title="livetranslate", layout="wide")
endpoints = Endpoints()


def require_login(why: str = "") -> None:
    """Returns for a logged-in visitor (or a --no-login dashboard on loopback); anyone else
    sees the login form (and WHY it is asked for) and nothing else: the script stops here."""
    try:
        if access_mode(st.get_option("server.address")) == "open":
            return
        credentials = load_credentials(settings.get(CREDENTIALS_ENV))
    except (AccessError, CredentialsError) as exc:
        st.error("The dashboard is not configured to let anyone in:")
        st.text(str(exc))
        st.stop()
    import streamlit_authenticator as stauth

    # made on every run: the credentials file is read afresh (a user added or removed counts
    # at once) and the library keeps its per-visitor state in st.session_state
    authenticator = stauth.Authenticate(credentials, COOKIE_NAME, cookie_key(), COOKIE_EXPIRY_DAYS, auto_hash=False)
    try:
        authenticator.login(
            fields={
                "Form name": "livetranslate: log in",
                "Username": "User name",
                "Password": "Password",
                "Login": "Log in",
            }
        )
    except stauth.LoginError as exc:  # e.g. the cookie of a user no longer in the file
        st.error(f"Cannot log in: {escape_markdown(str(exc))}")
    status = st.session_state.get("authentication_status")
    if not status:
        if status is False:
            st.error("Wrong user name or password")
        if why:
            st.info(why)
        st.stop()
    with st.sidebar:
        st.caption(f"Logged in as {escape_markdown(st.session_state.get('username') or '')}")
        authenticator.logout("Log out", "sidebar")
    if not st.session_state.get("authentication_status"):
        st.rerun()  # just logged out


@st.cache_resource
def followers() -> Followers:
    """The viewer connections of this dashboard process, shared by every page."""
    found = Endpoints()
    return Followers(lambda: PipelineClient(found.connection(), timeout_s=3))


def needs_login() -> bool:
    try:
        return access_mode(st.get_option("server.address")) != "open"
    except AccessError:
        return True


# --- the captions page -----------------------------------------------------------------------
# The lines live in a component (livetranslate/present/captions_page/, plain JS): its iframe
# stays across reruns, so it keeps the reader's scroll position and choices, and each rerun
# sends it only what changed (PageFeed).
captions_component = components.declare_component("livetranslate_captions", path=str(COMPONENT_DIR))


def captions_page() -> None:
    """The text of one language, large, the newest line at the bottom and the earlier ones a
    scroll away: for a phone, a projector or OBS. A share link's token opens it without a
    login, for its session only."""
    params = st.query_params
    session, lang = params.get("session") or None, (params.get("lang") or "").strip() or None
    st.html(page_css(params.get("style", "dark")))
    if session is not None and session_problem(session):
        st.error(f"This captions link names no session the server could have: {session_problem(session)}.")
        st.stop()
    if lang is not None:
        from livetranslate.languages import UnknownLanguage, code_for

        try:
            lang = code_for(lang)
        except UnknownLanguage as exc:
            st.error(f"This captions link names no language the server knows: {exc}")
            st.stop()
    token = params.get("token")
    if needs_login():
        if token is not None:
            if not (session and token_valid(session, token, cookie_key())):
                st.error(
                    "This captions link is not valid (its token does not match). "
                    "Ask the speaker for a new one: livetranslate share SESSION"
                )
                st.stop()
        else:
            require_login("These captions need a share link (`livetranslate share SESSION`) or a login.")
    captions(session, lang)


def captions(session: str | None, lang: str | None) -> None:
    """While the session is live the page takes the newest text every CAPTIONS_REFRESH_S;
    otherwise (waiting, ended) it looks every IDLE_REFRESH_S, which costs the server less."""
    if followers().get(session, lang).snapshot().state == "live":
        captions_live(session, lang)
    else:
        captions_idle(session, lang)


@st.fragment(run_every=CAPTIONS_REFRESH_S)
def captions_live(session: str | None, lang: str | None) -> None:
    draw_captions(session, lang, live=True)


@st.fragment(run_every=IDLE_REFRESH_S)
def captions_idle(session: str | None, lang: str | None) -> None:
    draw_captions(session, lang, live=False)


def draw_captions(session: str | None, lang: str | None, live: bool) -> None:
    snapshot = followers().get(session, lang).snapshot()
    feed = st.session_state.setdefault("captions-feed", PageFeed())  # what this tab was sent
    asked = st.session_state.get("captions-page")
    resync = str(asked.get("resync", "")) if isinstance(asked, dict) else ""  # the page missed a change
    style = st.query_params.get("style", "dark")
    size, size_note = text_size(st.query_params.get("size"))
    args = feed.payload(snapshot, resync, style=style if style in STYLES else "dark", size=size, size_note=size_note)
    captions_component(**args, key="captions-page", default=None)
    if (snapshot.state == "live") != live:
        st.rerun()  # the other pace


if st.query_params.get("view") == CAPTIONS_VIEW:
    captions_page()
    st.stop()


# --- the dashboard ---------------------------------------------------------------------------
require_login()


def uploads() -> dict:
    """Sessions started from this browser: name -> progress (a thread updates it)."""
    return st.session_state.setdefault("uploads", {})


def client() -> PipelineClient | None:
    try:
        return PipelineClient(endpoints.connection(), timeout_s=3)
    except ClientError as exc:
        st.error(f"Server unavailable: {escape_markdown(str(exc))}")
        return None


def start_upload(options: SessionOptions, upload) -> None:
    """Streams UPLOAD to the server as the session OPTIONS name (in its languages) in a thread,
    as fast as the server takes it; raises UploadError for a file that is too large or not
    audio. The temporary copy goes when the stream ends or fails."""
    name = options.session
    audio = UploadedAudio(upload, Path(upload.name).suffix or ".wav", max_bytes=max_upload_mb() * 2**20, realtime=False)
    progress = uploads()[name] = {"status": "starting", "events": 0, "done_s": 0.0, "total_s": audio.seconds}

    def run():
        def on_event(event):
            progress["events"] += 1
            progress["done_s"] = max(progress["done_s"], event.end_s)
            progress["status"] = f"streaming: {event.end_s:.0f} s processed"

        session = ResilientSession(
            endpoints.connection(),
            options,
            on_event=on_event,
            on_status=lambda m: progress.update(status=m),
        )
        with audio:
            try:
                session.run(audio)
                progress["status"], progress["done_s"] = "done", progress["total_s"] or progress["done_s"]
            except Exception as exc:  # a thread of its own: report, never lose the cleanup
                progress["status"] = f"failed: {exc}"
            finally:
                session.stop.set()

    try:
        threading.Thread(target=run, name=f"upload-{name}", daemon=True).start()
    except BaseException:
        audio.close()
        raise


def show_progress(names) -> None:
    for session_name in names:
        progress = uploads()[session_name]
        total = progress["total_s"]
        share = min(progress["done_s"] / total, 1.0) if total else 0.0
        st.progress(share, text=escape_markdown(f"{session_name}: {progress['status']} ({progress['events']} events)"))


def start_clicked() -> None:
    """The Start button: runs before the next script run, so it may turn the page to the
    session it started."""
    st.session_state.pop("upload-error", None)
    upload = st.session_state.get("upload-file") or st.session_state.get("upload-mic")
    name = (st.session_state.get("upload-name") or "").strip()
    try:
        options = upload_session(
            name,
            st.session_state.get("upload-spoken", DEFAULT_SPOKEN),
            st.session_state.get("upload-target", DEFAULT_TARGET),
            st.session_state.get("upload-translate", True),
        )
        start_upload(options, upload)
    except (ProtocolError, UploadError) as exc:
        st.session_state["upload-error"] = f"Cannot start: {str(exc).replace('SESSION', 'the session name')}"
        return
    st.session_state["session"] = name
    st.session_state["page"] = PAGES[0]
    for key in ("upload-name", "upload-name-kept"):  # the next upload gets a new default name
        st.session_state.pop(key, None)


# --- sidebar: health -------------------------------------------------------------------
def recent_delays() -> tuple[str, dict]:
    """The newest live session (or the newest session), and its delays."""
    c = client()
    if c is None:
        return "", {}
    try:
        listed = c.sessions("list")
        chosen = next((s for s in listed if s["state"] == "live"), listed[0] if listed else None)
        if chosen is None:
            return "", {}
        name = chosen["name"] + (", live" if chosen["state"] == "live" else "")
        return name, delays(c.sessions("get", chosen["name"])["events"])
    except ClientError:
        return "", {}
    finally:
        c.close()


@st.fragment(run_every=5)
def health_panel() -> None:
    st.header("Server")
    state = health(endpoints)
    if state["error"]:
        st.error(escape_markdown(f"Server unavailable: {state['error']}"))
        return
    problems = model_problems(state["models"])
    if state["ready"] and not problems:
        st.success("Ready")
    else:
        st.warning(escape_markdown("Not ready: " + (", ".join(problems) or "the pipeline is loading")))
    st.subheader("Delays")
    name, measured = recent_delays()
    st.caption(
        escape_markdown(
            "From the end of a spoken sentence until readers see it: median (and 95th percentile) over the "
            f"sentences of the newest session ({name or 'none yet'}). A file is sent faster than it plays and "
            "its sentences wait their turn: long delays there are that queue."
        )
    )
    if not measured:
        st.caption("No sentences yet.")
    for label, d in measured.items():
        st.metric(
            label.capitalize(),
            f"{d['median s']:.1f} s",
            help=f"95th percentile {d['p95 s']:.1f} s, {d['sentences']} sentences",
            delta=None,
        )
    metrics = fetch_metrics(endpoints)
    history = st.session_state.setdefault("metrics_history", [])  # counter samples: the last 5 minutes
    if metrics:
        history.append((time.time(), metrics))
        del history[:-60]
    with st.expander("Details for operators"):
        st.caption(
            "Per model since the server started: requests answered, failed, and the mean time "
            "a request took in milliseconds (of which computing)."
        )
        table = stage_table(metrics)
        if table:
            st.table(pd.DataFrame(table).set_index("stage"))
        throughput = rates(history)
        if throughput:
            st.caption("Requests per second, per model, since this page opened.")
            frame = pd.DataFrame(throughput).set_index("t")
            st.line_chart(
                frame[[c for c in ("pipeline", "whisper", "translate", "llm") if c in frame]],
                x_label="seconds since this page opened",
                y_label="requests/s",
            )


with st.sidebar:
    health_panel()

st.title("livetranslate")
page = st.radio("Page", PAGES, key="page", horizontal=True, label_visibility="collapsed")


def new_session_page() -> None:
    limit_mb = max_upload_mb()
    upload = st.file_uploader(f"Audio file (wav, mp3, m4a, ogg, flac …), up to {limit_mb} MB", key="upload-file")
    # the name typed is kept in a key of our own: Streamlit forgets a widget's value when the
    # widget is not drawn in a run (another page, a rerun cut short by another input)
    if "upload-name" not in st.session_state:
        st.session_state["upload-name"] = (
            st.session_state.get("upload-name-kept") or f"upload-{time.strftime('%H%M%S')}"
        )
    st.session_state["upload-name-kept"] = st.text_input("Session name", key="upload-name")
    spoken, target = st.columns(2)
    for column, key, label, choices, default in (
        (spoken, "upload-spoken", "Spoken language", SPOKEN_LANGUAGES, DEFAULT_SPOKEN),
        (target, "upload-target", "Translate into", TARGET_LANGUAGES, DEFAULT_TARGET),
    ):
        if key not in st.session_state:  # kept across pages, as the name is
            st.session_state[key] = st.session_state.get(f"{key}-kept", default)
        st.session_state[f"{key}-kept"] = column.selectbox(label, choices, key=key, format_func=language_label)
    st.checkbox("Translate", value=True, key="upload-translate")
    recording = st.audio_input("…or record with the browser microphone", key="upload-mic")
    upload = upload if upload is not None else recording
    too_large = upload is not None and upload.size > limit_mb * 2**20
    if upload is not None and too_large:
        st.error(f"The file is {upload.size / 2**20:.0f} MB; this dashboard takes files up to {limit_mb} MB.")
    st.button("Start", disabled=upload is None or too_large, on_click=start_clicked)
    if st.session_state.get("upload-error"):
        st.error(escape_markdown(st.session_state["upload-error"]))
    upload_progress()


@st.fragment(run_every=2)
def upload_progress() -> None:
    show_progress(list(uploads()))


@st.fragment(run_every=2)
def sessions_page() -> None:
    """The session list (new sessions appear by themselves) and the chosen one, in the URL."""
    c = client()
    if c is None:
        return
    try:
        listed = c.sessions("list")
    except ClientError as exc:
        st.error(escape_markdown(str(exc)))
        c.close()
        return
    infos = {s["name"]: s for s in listed}
    for name in uploads():  # started here, not on the server yet
        infos.setdefault(name, {"name": name, "state": "starting"})
    if not infos:
        c.close()
        st.info("No sessions yet: stream one with `livetranslate stream FILE` or start one from a file.")
        return
    names = sorted(infos, key=lambda n: infos[n]["state"] != "starting")  # the server lists newest first
    live = [n for n in names if infos[n]["state"] == "live"]
    if live:
        st.caption(escape_markdown("● LIVE now: " + ", ".join(live)))
    # the chosen session is always in the address (a bookmark, a reload keep it): nothing
    # chosen yet is the newest, chosen here rather than as the widget's default
    wanted = st.session_state.get("session") or session_from_address(st.query_params.get("session"), infos)
    st.session_state["session"] = wanted if wanted in infos else names[0]
    chosen = st.selectbox(
        "Session",
        names,
        index=None,
        key="session",
        format_func=lambda n: session_label(infos[n]),
        placeholder="Choose a session",
    )
    # its name only: a widget bound to the address would put the label shown ("● LIVE") there
    address = address_params(st.query_params.to_dict(), chosen)
    if address != st.query_params.to_dict():
        st.query_params.from_dict(address)
    if chosen is None:
        c.close()
        return
    try:
        session_view(c, infos[chosen])
    finally:
        c.close()


def session_view(c: PipelineClient, info: dict) -> None:
    name = info["name"]
    if name in uploads():
        show_progress([name])
    if info["state"] == "starting":
        st.info("Starting…")
        return
    save_correction(c, name)  # one asked for in the last run: stored before the text is read
    save_name(c, name)
    try:
        events = c.sessions("get", name)["events"]
    except ClientError as exc:
        st.warning(escape_markdown(f"No session named {name!r}: {exc}"))
        return
    live = info["state"] == "live"
    cols = st.columns([1, 6])
    if live:
        cols[0].badge("LIVE", color="red")
    else:
        cols[0].badge(info["state"], color="gray")
    cols[1].caption(
        escape_markdown(
            f"{info['source_language']} → {info['target_language']} · {info['counts'].get('transcript', 0)} sentences"
        )
    )
    token = share_token(name, cookie_key()) if needs_login() else None
    link = share_link(st.context.url or "", name, info["target_language"], token)
    with st.expander("Captions for coworkers: share this link"):
        st.code(link, language=None)
        st.link_button("Open the captions page", link)
    if live:  # what is being said now, replaced as it grows (not stored: only a viewer sees it)
        spoken = info["source_language"]
        if spoken == AUTO_LANGUAGE:
            spoken = next((e.language for e in reversed(events) if e.kind == EventKind.TRANSCRIPT), None)
        interim = followers().get(name, spoken).snapshot().interim if spoken else ""
        st.text(f"… {interim}" if interim else "…")
        target = info["target_language"]
        if target and target != spoken:  # its translation as it is generated
            translating = followers().get(name, target).snapshot().interim
            if translating:
                st.text(f"→ {translating} …")
    rows, marked = corrected_rows(session_rows(events), events)  # a correction first
    newest_first = st.toggle("Newest first", value=live, key=f"newest-{name}")
    if rows:
        # st.table puts the text in the page as text (the dataframe grid draws on a canvas and
        # cuts long cells); it reads cells as Markdown, so the text goes in escaped
        table = pd.DataFrame(rows[::-1] if newest_first else rows).set_index("segment")
        for column in ("speaker", "transcript", "translation", readable.COMBINED_NAME):
            if column in table:
                table[column] = table[column].map(escape_markdown)
        st.table(table)
    if marked:
        st.caption(CORRECTED_MARK, help=CORRECTED_HELP)
    organiser = may_edit(st.get_option("server.address"), st.session_state.get("authentication_status"))
    if rows and organiser:
        correction_panel(name, rows)
        speaker_panel(name, events)
    if rows:  # nothing to summarize before the first line
        summary_panel(name, info, events, organiser)
    lang = st.radio(
        "Download",
        ["both", "source", "target"],
        horizontal=True,
        key=f"lang-{name}",
        format_func={"both": "transcript + translation", "source": "transcript only", "target": "translation only"}.get,
    )
    for col, fmt in zip(st.columns(4), ("txt", "srt", "vtt", "jsonl")):
        col.download_button(f"Download {fmt}", export(events, fmt, lang), file_name=f"{name}.{fmt}", key=f"dl-{fmt}")


# --- an organiser's corrections and summaries (the logic: livetranslate/dashboard/revisions.py)
def save_clicked(name: str, shown: dict) -> None:
    """The Save button: the correction goes to the server at the top of the next run."""
    line = st.session_state.get(f"edit-line-{name}")
    text = st.session_state.get(f"edit-text-{name}-{line}", "")
    st.session_state[f"edit-ask-{name}"] = (line, text, shown.get(line, ""))


def save_correction(c: PipelineClient, name: str) -> None:
    asked = st.session_state.pop(f"edit-ask-{name}", None)
    if asked and may_edit(st.get_option("server.address"), st.session_state.get("authentication_status")):
        with st.spinner("Saving the correction and translating it…"):
            st.session_state[f"edit-done-{name}"] = correct(c, name, *asked)


def correction_panel(name: str, rows: list[dict]) -> None:
    """Pick a line, edit its text, save; then what the server stored, or why not."""
    if not st.toggle("Correct a line", key=f"edit-on-{name}"):  # off: a reader's view, nothing to mistype
        return
    by_id = {row["segment"]: row for row in rows}
    line = st.selectbox("Line", list(by_id), key=f"edit-line-{name}", format_func=lambda s: line_label(by_id[s]))
    st.text_area("Corrected text", by_id[line]["transcript"], key=f"edit-text-{name}-{line}", help=EDIT_HELP)
    shown = {seg: row["transcript"] for seg, row in by_id.items()}
    st.button("Save correction", key=f"edit-save-{name}", on_click=save_clicked, args=(name, shown))
    done = st.session_state.get(f"edit-done-{name}")
    if done is not None:
        (st.success if done.ok else st.error)(escape_markdown(done.headline))
        for text in done.stored:  # the speaker's words: plain text
            st.text(text)
        for warning in done.warnings:
            st.warning(escape_markdown(warning))


def name_clicked(name: str) -> None:
    """The Save name button: the name goes to the server at the top of the next run."""
    label = st.session_state.get(f"name-label-{name}")
    st.session_state[f"name-ask-{name}"] = (label, st.session_state.get(f"name-text-{name}-{label}", ""))


def save_name(c: PipelineClient, name: str) -> None:
    asked = st.session_state.pop(f"name-ask-{name}", None)
    if asked and may_edit(st.get_option("server.address"), st.session_state.get("authentication_status")):
        with st.spinner("Saving the name…"):
            st.session_state[f"name-done-{name}"] = name_speaker(c, name, *asked)


def speaker_panel(name: str, events: list) -> None:
    """Name a speaker of a session with speaker labels: pick a label, type the name, save."""
    found = speaker_times(events)
    if not found or not st.toggle("Name a speaker", key=f"name-on-{name}"):
        return
    by_label = {s.label: s for s in found}
    label = st.selectbox(
        "Speaker",
        list(by_label),
        key=f"name-label-{name}",
        format_func=lambda x: " ".join(filter(None, (x, by_label[x].name, f"({by_label[x].lines} lines)"))),
    )
    st.text_input("Name", by_label[label].name, key=f"name-text-{name}-{label}", max_chars=MAX_NAME_CHARS)
    st.button("Save name", key=f"name-save-{name}", on_click=name_clicked, args=(name,))
    done = st.session_state.get(f"name-done-{name}")
    if done is not None:
        (st.success if done.ok else st.error)(escape_markdown(done.headline))


def summary_panel(name: str, info: dict, events: list, organiser: bool) -> None:
    """The session's summary in the language chosen (the stored one, without asking again),
    and for an organiser the button that asks the LLM for one, on a thread of its own."""
    jobs = st.session_state.setdefault("summaries", {})
    st.subheader("Summary")
    choices = summary_languages(info, events) or [""]  # the session's languages, its target first
    lang = st.segmented_control(
        "Summary language",
        choices,
        default=choices[0],
        required=True,
        key=f"summary-lang-{name}",
        format_func=lambda code: language_label(code) if code else "the session's",
    )
    shown = summary_view(events, lang, jobs.get((name, lang)))
    if shown.running:
        st.status(escape_markdown(shown.running), state="running")
    if shown.error:
        st.error(escape_markdown(shown.error))
    if shown.text:
        st.text(shown.text)  # the LLM's words: plain text
    if organiser:

        def start() -> None:
            connect = lambda: PipelineClient(endpoints.connection(), timeout_s=3)  # noqa: E731
            jobs[(name, lang)] = SummaryJob(connect, name, lang).start()

        label = "Summarize again" if shown.text else "Summarize"
        st.button(label, key=f"summarize-{name}", disabled=bool(shown.running), on_click=start)


if page == PAGES[1]:
    new_session_page()
else:
    sessions_page()
