"""livetranslate dashboard: follow live and past sessions, start one from an audio file,
watch server health. Run with `livetranslate dashboard`."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from livetranslate.client import ClientError, PipelineClient, ResilientSession
from livetranslate.dashboard import Endpoints, fetch_metrics, health, rates, session_rows, stage_table
from livetranslate.export import export
from livetranslate.protocol import SessionOptions

st.set_page_config(page_title="livetranslate", layout="wide")
endpoints = Endpoints()


@st.cache_resource
def uploads() -> dict:
    """Sessions started from this dashboard: name -> progress dict (shared across reruns)."""
    return {}


def client() -> PipelineClient | None:
    try:
        return PipelineClient(endpoints.connection(), timeout_s=3)
    except ClientError as exc:
        st.error(f"Server unavailable: {exc}")
        return None


def start_upload(name: str, data: bytes, suffix: str, translate: bool) -> None:
    from livetranslate.capture import open_source

    path = Path(tempfile.mkdtemp()) / f"upload{suffix}"
    path.write_bytes(data)
    source = open_source(str(path), realtime=True)
    progress = uploads()[name] = {"status": "starting", "events": 0, "done_s": 0.0, "total_s": source.seconds}

    def run():
        def on_event(event):
            progress["events"] += 1
            progress["done_s"] = max(progress["done_s"], event.end_s)
            progress["status"] = f"streaming: {event.end_s:.0f} s processed"

        session = ResilientSession(endpoints.connection(), SessionOptions(name, source.rate, translate=translate),
                                   on_event=on_event, on_status=lambda m: progress.update(status=m))
        try:
            session.run(source)
            progress["status"], progress["done_s"] = "done", progress["total_s"] or progress["done_s"]
        except ClientError as exc:
            progress["status"] = f"failed: {exc}"

    threading.Thread(target=run, daemon=True).start()


@st.fragment(run_every=2)
def upload_progress() -> None:
    for session_name, progress in uploads().items():
        total = progress["total_s"]
        share = min(progress["done_s"] / total, 1.0) if total else 0.0
        st.progress(share, text=f"{session_name}: {progress['status']} ({progress['events']} events)")


# --- sidebar: health -------------------------------------------------------------------
@st.fragment(run_every=5)
def health_panel() -> None:
    st.header("Server")
    state = health(endpoints)
    if state["error"]:
        st.error(state["error"])
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
    upload = st.file_uploader("Audio file (wav, mp3, m4a, ogg, flac …)")
    name = st.text_input("Session name", value=f"upload-{time.strftime('%H%M%S')}")
    translate = st.checkbox("Translate", value=True)
    recording = st.audio_input("…or record with the browser microphone")
    if recording is not None and upload is None:
        upload = recording
    if st.button("Start", disabled=upload is None):
        try:
            start_upload(name, upload.getvalue(), Path(upload.name).suffix or ".wav", translate)
            st.session_state["session"] = name
            st.success(f"Session {name} started: follow it in the Sessions tab")
        except Exception as exc:
            st.error(f"Cannot start: {exc}")
    upload_progress()


@st.fragment(run_every=2)
def live_view(session: str) -> None:
    c = client()
    if c is None:
        return
    try:
        data = c.sessions("get", session)
    except ClientError as exc:
        st.warning(f"No session named {session!r}: {exc}")
        return
    finally:
        c.close()
    info, events = data["info"], data["events"]
    st.caption(f"{info['state']} · {info['source_language']} → {info['target_language']} · "
               f"{info['counts'].get('transcript', 0)} segments")
    rows, enhanced = session_rows(events)
    live = info["state"] == "live"
    # following a live session: the newest text on top, always in view without scrolling
    newest_first = st.toggle("Newest first", value=live, key=f"newest-{session}")
    for e in enhanced[-5:][::-1] if newest_first else enhanced[-5:]:
        segs = f"#{e.first_segment_id}–{e.segment_id}" if e.first_segment_id != e.segment_id else f"#{e.segment_id}"
        st.info(f"**enhanced {segs}:** {e.text}")
    if rows:
        # st.table renders real HTML text (the dataframe grid draws on a canvas)
        st.table(pd.DataFrame(rows[::-1] if newest_first else rows).set_index("segment"))
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
            st.error(str(exc))
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
