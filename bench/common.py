"""Shared bench helpers: start a server, stream a file, summarise numbers, write reports."""

from __future__ import annotations

import json
import platform
import socket
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import livetranslate
from livetranslate.audio import chunks, read_audio
from livetranslate.client import PipelineClient, StreamStats
from livetranslate.protocol import SessionOptions

# the package layout of the tree on PYTHONPATH (bench_ab.py runs a tree from before it too):
# judged by its folders, since an editable install would find the new modules anywhere
LAID_OUT = (Path(livetranslate.__file__).parent / "launcher").is_dir()

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / ".cache" / "bench"


@dataclass(frozen=True)
class Recording:
    """A bench recording and what is said in it, one entry per sentence, in order."""

    name: str  # "espeak" or "natural": a key for reports
    path: Path
    german: list[str]
    english: list[str]
    spans_s: list[tuple[float, float]]  # (start, end) of each sentence in the audio
    about: str  # one line for a report: voices, pauses, noise

    @property
    def reference(self) -> str:
        """The whole German text, for a WER over the recording."""
        return " ".join(self.german)


def recordings(smoke: bool = False, folder: Path = DATA) -> list[Recording]:
    """The recordings a bench loops over: the espeak-ng meeting the streaming policy was tuned
    on (the bench recording, or with `smoke` the five-sentence one) and the natural one (four
    MBROLA and Pico voices, room reverb, noise 20 dB down, 150-500 ms turns; with `smoke` its
    first half minute)."""
    from livetranslate.quality import samples, samples_natural

    if smoke:
        espeak_path, english = samples.make_all(folder)["speech"], samples.SENTENCES_EN[:5]
        about = "espeak-ng, 1 voice, pauses 1 s, noise -50 dBFS"
    else:
        espeak_path, english = samples.make_bench_recording(folder), samples.MEETING_EN + samples.SENTENCES_EN
        about = "espeak-ng, 3 voices, pauses 0.6-2 s, noise -45 dBFS"
    espeak_reference = samples.load_reference(espeak_path)
    assert len(espeak_reference) == len(english), espeak_path
    natural_path = samples_natural.make_natural(folder)["natural_short" if smoke else "natural"]
    natural_reference = samples_natural.load_reference(natural_path)
    return [
        Recording(
            "espeak",
            espeak_path,
            [u.text for u in espeak_reference],
            list(english),
            [(u.start_s, u.end_s) for u in espeak_reference],
            about,
        ),
        Recording(
            "natural",
            natural_path,
            [u.text_de for u in natural_reference],
            [u.text_en for u in natural_reference],
            [(u.start_s, u.end_s) for u in natural_reference],
            f"MBROLA and Pico, {len({u.voice for u in natural_reference})} voices, room reverb, "
            f"pauses 0.15-0.5 s, noise {samples_natural.SNR_DB:.0f} dB below speech",
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_name: str, **options):
    import tempfile

    if LAID_OUT:
        from livetranslate.launcher import ServerOptions, TritonServer
    else:  # a tree from before the package layout (bench_ab.py runs old trees too)
        from livetranslate.server import ServerOptions, TritonServer  # type: ignore[no-redef]

    RESULTS.mkdir(parents=True, exist_ok=True)
    # sessions of a bench go to a folder of their own (a stored name would be continued)
    options.setdefault("data_dir", Path(tempfile.mkdtemp(prefix="livetranslate-bench-")))
    opts = ServerOptions(
        grpc_port=free_port(), http_port=free_port(), metrics_port=free_port(), host="127.0.0.1", **options
    )
    server = TritonServer(opts, log_file=ROOT / ".cache" / f"{log_name}.log")
    server.start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def stream_timed(
    url: str,
    path: Path,
    *,
    realtime: bool,
    session: str,
    language: str = "de",
    translate: bool = True,
    partials: bool = True,
    seconds: float | None = None,
    speakers: bool = False,
):
    """Streams a file (its first `seconds`); returns (events with their receive time since
    start, stats, audio seconds)."""
    pcm, rate = read_audio(path)
    if seconds is not None:
        pcm = pcm[: int(seconds * rate)]
    stats = StreamStats()
    received = []
    options = SessionOptions(session, rate, language, translate=translate, partials=partials, speakers=speakers)
    with PipelineClient(url) as client:
        for event in client.stream(chunks(pcm, rate // 10), options, realtime=realtime, stats=stats):
            received.append((time.monotonic() - stats.started, event))
    return received, stats, len(pcm) / rate


def stream_many(url: str, path: Path, n: int, *, session: str, **options) -> list:
    """`n` copies of a file streamed at once (stream_timed's options), each its own session;
    their stream_timed results, in order."""
    import threading

    results: list = [None] * n

    def run(i: int) -> None:
        results[i] = stream_timed(url, path, session=f"{session}-{i}", **options)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def stream_in_process(pipeline, pcm: np.ndarray, rate: int, options: SessionOptions) -> list:
    """Streams audio through a Pipeline in this process as fast as it goes, paced as the
    client paces itself: at most client.WINDOW_S of audio whose requests are not answered
    yet (a stream refuses a client that queues far more). Returns the events, up to `end`."""
    import threading

    from livetranslate.client import WINDOW_S
    from livetranslate.protocol import AUDIO, EventKind

    events, done = [], threading.Event()

    class Reply:
        def __init__(self, samples: int):
            self.samples, self.closed = samples, threading.Event()

        def send(self, event):
            events.append(event)
            if event.kind == EventKind.END:
                done.set()

        def close(self):
            self.closed.set()

    tensors, parts, unanswered = options.to_tensors(), list(chunks(pcm, rate // 10)), []
    for i, part in enumerate(parts):
        unanswered = [r for r in unanswered if not r.closed.is_set()]
        while unanswered and sum(r.samples for r in unanswered) + len(part) > WINDOW_S * rate:
            unanswered[0].closed.wait(60)
            unanswered = [r for r in unanswered if not r.closed.is_set()]
        reply = Reply(len(part))
        unanswered.append(reply)
        pipeline.handle(1, i == 0, i == len(parts) - 1, {AUDIO: part, **(tensors if i == 0 else {})}.get, reply)
    done.wait(1200)
    return events


def sentences(path: Path) -> list[dict]:
    """A test recording's reference sentences (either kind: samples or samples_natural),
    each with its `start_s` and `end_s`."""
    import json

    return json.loads(path.with_suffix(".json").read_text())


def nearest(reference: list[dict], t: float) -> int:
    """The sentence a moment `t` belongs to: the one whose reference time holds it, else the
    closest (in the pause between two sentences)."""
    return min(range(len(reference)), key=lambda i: max(reference[i]["start_s"] - t, t - reference[i]["end_s"], 0.0))


def percentiles(values) -> dict:
    values = sorted(values)
    if not values:
        return {}
    return {
        "n": len(values),
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "max": round(float(max(values)), 1),
        "mean": round(statistics.fmean(values), 1),
    }


def machine() -> dict:
    import os

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def write_report(name: str, data: dict, markdown: str, folder: Path = RESULTS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False))
    (folder / f"{name}.md").write_text(markdown)
    print(markdown)
