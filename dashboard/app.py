"""livetranslate dashboard: follow live and past sessions, start one from an audio file,
watch server health. Run with `livetranslate dashboard`.

Nothing shows before a login (the server's API key lives in this process). Text that
came from speech or the LLM is shown as plain text, never as Markdown or HTML."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from livetranslate.client import ClientError, PipelineClient, ResilientSession
from livetranslate.dashboard import (COOKIE_EXPIRY_DAYS, COOKIE_NAME, CREDENTIALS_ENV, AccessError, CredentialsError,
                                     Endpoints, UploadedAudio, UploadError, access_mode, cookie_key, escape_markdown,
                                     fetch_metrics, health, load_credentials, max_upload_mb, rates, session_rows,
                                     stage_table)
from livetranslate.export import export
from livetranslate.protocol import SessionOptions

st.set_page_config(page_title="livetranslate", layout="wide")


def require_login() -> None:
    """Returns for a logged-in visitor (or a --no-login dashboard on loopback); anyone else
    sees the login form and nothing else: the script stops here."""
    try:
        if access_mode(st.get_option("server.address")) == "open":
            return
        credentials = load_credentials(os.environ[CREDENTIALS_ENV])
    except (AccessError, CredentialsError) as exc:
        st.error("The dashboard is not configured to let anyone in:")
        st.text(str(exc))
        st.stop()
    import streamlit_authenticator as stauth

    # made on every run: the credentials file is read afresh (a user added or removed counts
    # at once) and the library keeps its per-visitor state in st.session_state
    authenticator = stauth.Authenticate(credentials, COOKIE_NAME, cookie_key(), COOKIE_EXPIRY_DAYS, auto_hash=False)
    try:
        authenticator.login(fields={"Form name": "livetranslate: log in", "Username": "User name",
                                    "Password": "Password", "Login": "Log in"})
    except stauth.LoginError as exc:  # e.g. the cookie of a user no longer in the file
        st.error(f"Cannot log in: {escape_markdown(str(exc))}")
    status = st.session_state.get("authentication_status")
    if not status:
        if status is False:
            st.error("Wrong user name or password")
        st.stop()
    with st.sidebar:
        st.caption(f"Logged in as {escape_markdown(st.session_state.get('username') or '')}")
        authenticator.logout("Log out", "sidebar")
    if not st.session_state.get("authentication_status"):
        st.rerun()  # just logged out


require_login()
endpoints = Endpoints()


@st.cache_resource
def uploads() -> dict:
    """Sessions started from this dashboard: name -> progress dict (shared across reruns)."""
    return {}


def client() -> PipelineClient | None:
    try:
        return PipelineClient(endpoints.connection(), timeout_s=3)
    except ClientError as exc:
        st.error(f"Server unavailable: {escape_markdown(str(exc))}")
        return None


def start_upload(name: str, upload, translate: bool) -> None:
    """Streams UPLOAD to the server as session NAME in a thread; raises UploadError for a
    file that is too large or not audio. The temporary copy goes when the stream ends or fails."""
    audio = UploadedAudio(upload, Path(upload.name).suffix or ".wav", max_bytes=max_upload_mb() * 2**20)
    progress = uploads()[name] = {"status": "starting", "events": 0, "done_s": 0.0, "total_s": audio.seconds}

    def run():
        def on_event(event):
            progress["events"] += 1
            progress["done_s"] = max(progress["done_s"], event.end_s)
            progress["status"] = f"streaming: {event.end_s:.0f} s processed"

        session = ResilientSession(endpoints.connection(), SessionOptions(name, audio.rate, translate=translate),
                                   on_event=on_event, on_status=lambda m: progress.update(status=m))
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


@st.fragment(run_every=2)
def upload_progress() -> None:
    for session_name, progress in uploads().items():
        total = progress["total_s"]
        share = min(progress["done_s"] / total, 1.0) if total else 0.0
        st.progress(share, text=escape_markdown(f"{session_name}: {progress['status']} ({progress['events']} events)"))


# --- sidebar: health -------------------------------------------------------------------
@st.fragment(run_every=5)
def health_panel() -> None:
    st.header("Server")
    state = health(endpoints)
    if state["error"]:
        st.error(escape_markdown(state["error"]))
    else:
        st.success("ready" if state["ready"] else "up, pipeline not ready")
        st.dataframe(pd.DataFrame([{"model": k, "state": v} for k, v in sorted(state["models"].items())]),
                     hide_index=True)
    metrics = fetch_metrics(endpoints)
    # samples of the counters over time, for throughput: the last 5 minutes
    history = st.session_state.setdefault("metrics_history", [])
    if metrics:
        history.append((time.time(), metrics))
        del history[:-60]
    table = stage_table(metrics)
    if table:
        st.subheader("Per-stage latency")
        frame = pd.DataFrame(table).set_index("stage")
        st.bar_chart(frame[["mean request ms"]])
        st.dataframe(frame)
    throughput = rates(history)
    if throughput:
        st.subheader("Throughput (requests/s)")
        frame = pd.DataFrame(throughput).set_index("t")
        st.line_chart(frame[[c for c in ("pipeline", "whisper", "translate", "llm") if c in frame]],
                      x_label="seconds", y_label="requests/s")


with st.sidebar:
    health_panel()

st.title("livetranslate")
tab_watch, tab_new = st.tabs(["Sessions", "New session from a file"])

with tab_new:
    limit_mb = max_upload_mb()
    upload = st.file_uploader(f"Audio file (wav, mp3, m4a, ogg, flac …), up to {limit_mb} MB")
    # the default made once per visitor: a default that changed on every rerun made a new
    # widget each time, dropping the name typed in it
    st.session_state.setdefault("upload-name", f"upload-{time.strftime('%H%M%S')}")
    name = st.text_input("Session name", key="upload-name")
    translate = st.checkbox("Translate", value=True)
    recording = st.audio_input("…or record with the browser microphone")
    if recording is not None and upload is None:
        upload = recording
    too_large = upload is not None and upload.size > limit_mb * 2**20
    if too_large:
        st.error(f"The file is {upload.size / 2**20:.0f} MB; this dashboard takes files up to {limit_mb} MB.")
    if st.button("Start", disabled=upload is None or too_large):
        try:
            start_upload(name, upload, translate)
            st.session_state["session"] = name
            st.success(escape_markdown(f"Session {name} started: follow it in the Sessions tab"))
        except UploadError as exc:
            st.error(escape_markdown(f"Cannot start: {exc}"))
    upload_progress()


@st.fragment(run_every=2)
def live_view(session: str) -> None:
    c = client()
    if c is None:
        return
    try:
        data = c.sessions("get", session)
    except ClientError as exc:
        st.warning(escape_markdown(f"No session named {session!r}: {exc}"))
        return
    finally:
        c.close()
    info, events = data["info"], data["events"]
    st.caption(escape_markdown(f"{info['state']} · {info['source_language']} → {info['target_language']} · "
                               f"{info['counts'].get('transcript', 0)} segments"))
    rows, enhanced = session_rows(events)
    live = info["state"] == "live"
    # following a live session: the newest text on top, always in view without scrolling
    newest_first = st.toggle("Newest first", value=live, key=f"newest-{session}")
    for e in enhanced[-5:][::-1] if newest_first else enhanced[-5:]:
        segs = f"#{e.first_segment_id}–{e.segment_id}" if e.first_segment_id != e.segment_id else f"#{e.segment_id}"
        with st.container(border=True):
            st.caption(f"enhanced {segs}")
            st.text(e.text)
    if rows:
        # st.table puts the text in the page as text (the dataframe grid draws on a canvas and
        # cuts long cells); it reads cells as Markdown, so the text goes in escaped
        table = pd.DataFrame(rows[::-1] if newest_first else rows).set_index("segment")
        for column in ("transcript", "translation"):
            table[column] = table[column].map(escape_markdown)
        st.table(table)
    lang = st.radio("Download", ["both", "source", "target"], horizontal=True, key=f"lang-{session}",
                    format_func={"both": "transcript + translation", "source": "transcript only",
                                 "target": "translation only"}.get)
    cols = st.columns(4)
    for col, fmt in zip(cols, ("txt", "srt", "vtt", "jsonl")):
        col.download_button(f"Download {fmt}", export(events, fmt, lang), file_name=f"{session}.{fmt}",
                            key=f"dl-{fmt}")


with tab_watch:
    c = client()
    sessions = []
    if c is not None:
        try:
            sessions = c.sessions("list")
        except ClientError as exc:
            st.error(escape_markdown(str(exc)))
        finally:
            c.close()
    if not sessions:
        st.info("No sessions yet: stream one with `livetranslate stream FILE` or start one from a file.")
    else:
        names = [s["name"] for s in sessions]
        labels = {s["name"]: f"{s['name']} ({s['state']})" for s in sessions}
        default = names.index(st.session_state["session"]) if st.session_state.get("session") in names else 0
        chosen = st.selectbox("Session", names, index=default, format_func=labels.get)
        live_view(chosen)
