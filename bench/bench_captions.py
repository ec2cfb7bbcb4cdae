"""Figures: how long after an event leaves the server its text shows on the captions page.

A speaker streams German speech in real time; a viewer in this process follows the session
(its receipt of each event is the yardstick: the same event leaving the same server), and
headless Chromium shows the captions page of `livetranslate dashboard` in German and in
English, PAGES pages in all, each recording in the page when every line and every interim
text first showed. Delay = page time - receipt time (one machine, one clock), per kind:
transcripts and partials on the German pages, translations on the English ones.

    .venv/bin/python bench/bench_captions.py [--pages 2 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, machine, percentiles, start_server, write_report  # noqa: E402

from livetranslate.client import PipelineClient  # noqa: E402
from livetranslate.present.captions import MAX_LINES  # noqa: E402
from livetranslate.protocol import EventKind  # noqa: E402
from livetranslate.quality.samples import make_all  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from test_e2e_dashboard import speak  # noqa: E402

FRAME = 'iframe[title$="livetranslate_captions"]'
CAPTIONS_REFRESH_S = 0.5  # dashboard/app.py's CAPTIONS_REFRESH_S, for the report
OBSERVE = """() => {
  window.__seen = {}; window.__interims = {};
  const note = () => {
    const now = Date.now();
    document.querySelectorAll('.lt-line .lt-text').forEach(el => {
      const t = el.textContent.trim(); if (!(t in window.__seen)) window.__seen[t] = now; });
    const el = document.querySelector('.lt-interim .lt-text');
    if (el && !(el.textContent.trim() in window.__interims)) window.__interims[el.textContent.trim()] = now;
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def run(server, board_url: str, browser, audio: Path, n_pages: int, name: str) -> dict:
    pages = []
    for i in range(n_pages):
        lang = "de" if i % 2 == 0 else "en"
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(f"{board_url}/?view=captions&session={name}&lang={lang}")
        # the captions are a component: its own document, in an iframe over the whole page
        frame = page.wait_for_selector(FRAME, state="attached", timeout=60_000).content_frame()
        frame.wait_for_selector(".lt-lines", state="attached", timeout=60_000)
        frame.evaluate(OBSERVE)
        pages.append((lang, page, frame))
    received, spoken, started = [], [], threading.Event()

    def view():  # joins as the session starts: every event it gets is live, none from the history
        with PipelineClient(server.grpc_url) as client:
            while not received:
                for event in client.watch(name):
                    if event.kind == EventKind.END and event.error and not received:
                        time.sleep(0.02)  # no such session yet
                        break
                    received.append((time.time() * 1000, event))

    errors = []

    def speak_partials():  # partials go to viewers live (not stored): the watcher sees them too
        try:
            speak(server.grpc_url, audio, name, spoken, started)
        except Exception as exc:  # reported with the run
            errors.append(f"{type(exc).__name__}: {exc}")

    viewer = threading.Thread(target=view, daemon=True)
    viewer.start()
    time.sleep(0.5)
    speaker = threading.Thread(target=speak_partials)
    speaker.start()
    speaker.join(600)
    viewer.join(60)
    time.sleep(2)
    shown = {lang: [] for lang in ("de", "en")}
    for i, (lang, page, frame) in enumerate(pages):
        shown[lang].append((frame.evaluate("window.__seen"), frame.evaluate("window.__interims")))
        if i < 2:
            page.screenshot(path=str(ROOT / ".cache" / f"bench-captions-{n_pages}-{lang}.png"))
        page.close()
    delays: dict[str, list[float]] = {"transcript": [], "translation": [], "partial": []}
    missing = 0
    for at_ms, event in received:
        if not event.text or event.kind.value not in delays:
            continue
        lang = "en" if event.kind == EventKind.TRANSLATION else "de"
        for seen, interims in shown[lang]:
            table = interims if event.kind == EventKind.PARTIAL else seen
            first = [t for text, t in table.items() if text.endswith(event.text.strip())]
            if first:
                delays[event.kind.value].append(first[0] - at_ms)
            elif event.kind != EventKind.PARTIAL:
                missing += 1  # a partial replaced within one refresh is never drawn: not counted
    return {
        "pages": n_pages,
        "delay_ms": {k: percentiles(v) for k, v in delays.items()},
        "speaker_partials": sum(e.kind == EventKind.PARTIAL for e in spoken),
        "speaker_errors": errors,
        "speaker_transcript_latency_ms": percentiles([e.latency_ms for e in spoken if e.kind == EventKind.TRANSCRIPT]),
        "lines_missing": missing,
        "partials_drawn": f"{len(delays['partial'])}/{sum(e.kind == EventKind.PARTIAL for _, e in received) * max(1, n_pages // 2)}",
    }


def main():
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, nargs="+", default=[0, 2, 4])
    parser.add_argument("--report-only", action="store_true", help="write the report again from captions.json")
    args = parser.parse_args()
    if args.report_only:
        import json

        data = json.loads((ROOT / "bench" / "results" / "captions.json").read_text())
        return report(data["runs"], data["load_average"], data["machine"])
    audio = make_all(ROOT / ".cache" / "test-audio")["speech"]
    server = start_server("bench-captions", llm="gemma3-270m")
    port = free_port()
    board = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livetranslate.cli",
            "dashboard",
            "--no-login",
            "--port",
            str(port),
            "--url",
            server.grpc_url,
            "--http-url",
            server.http_url,
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    load_before = os.getloadavg()[0]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
            )
            url = f"http://127.0.0.1:{port}"
            for _ in range(60):
                try:
                    page = browser.new_page()
                    page.goto(url, timeout=5000)
                    page.close()
                    break
                except Exception:
                    time.sleep(1)
            for n in args.pages:
                rows.append(run(server, url, browser, audio, n, f"bench-captions-{n}"))
            browser.close()
    finally:
        board.terminate()
        board.wait(10)
        server.stop()
    report(rows, f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after")


def report(rows: list[dict], load: str, measured: dict | None = None) -> None:
    measured = measured or machine()
    lines = [
        "# Captions page delay",
        "",
        f"Measured {measured['date']} on {measured['cpus']} CPUs (load average {load}: other work shared "
        "the machine). A speaker streams a 24 s German file in real "
        "time (Triton cpu profile, Gemma 3 270M); headless Chromium shows the captions page (half the pages in "
        "German, half in English); delay = when the text first showed in the page - when a viewer in the bench "
        f"process received the same event. The page takes the newest text every {CAPTIONS_REFRESH_S} s (one "
        f"Streamlit fragment rerun); pages of one session and language share one viewer connection. "
        f"{MAX_LINES} lines on screen.",
        "",
        "| pages | transcript p50 / p95 ms | translation p50 / p95 ms | partial p50 / p95 ms | lines missing | "
        "partials drawn | partials the speaker got | speaker transcript latency p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r["delay_ms"]
        cell = [f"{d[k].get('p50', '–')} / {d[k].get('p95', '–')}" for k in ("transcript", "translation", "partial")]
        lat = r["speaker_transcript_latency_ms"]
        lines.append(
            f"| {r['pages']} | {' | '.join(cell)} | {r['lines_missing']} | {r['partials_drawn']} | "
            f"{r['speaker_partials']} | {lat.get('p50', '–')} / {lat.get('p95', '–')} |"
        )
    lines += [
        "",
        "A partial replaced by the next one (or by its transcript) within one refresh is never drawn: "
        "'partials drawn' counts how many were, over all pages. Here the browsers run on the server's "
        "2 cores: every page's rendering takes CPU from Whisper, and partials (decoded at idle priority) are "
        "the first to go, then the speaker's latency rises. In a meeting each page renders on its reader's "
        "device; the server pays only the dashboard's reruns (one per page and refresh). Reproduce: "
        "`.venv/bin/python bench/bench_captions.py --pages 0 2 4`.",
        "",
    ]
    write_report(
        "captions",
        {"machine": measured, "load_average": load, "refresh_s": CAPTIONS_REFRESH_S, "runs": rows},
        "\n".join(lines),
    )


if __name__ == "__main__":
    main()
