"""`stream` and `watch`: a speaker's stream and a viewer's."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import click

from livetranslate import protocol as P
from livetranslate.cli.options import (
    connection_options,
    open_connection,
    session_hint,
    stored_names,
    stream_options,
)
from livetranslate.cli.outputs import Outputs
from livetranslate.client import ClientError
from livetranslate.glossary import NO_GLOSSARY, Glossary
from livetranslate.protocol import Event, EventKind, SessionOptions


@dataclass(frozen=True)
class StreamRequest:
    """What `stream`, `run` and `demo` ask of one speaker's stream: where the server is, what the
    stream sends, and where its events go."""

    # where the server is
    url: str
    tls: bool = False
    ca: str | None = None
    api_key: str | None = None
    # what the stream sends and asks for
    session: str | None = None  # default: the source's name and the time
    source_language: str = P.DEFAULT_SOURCE_LANGUAGE
    target_language: str = P.DEFAULT_TARGET_LANGUAGE
    realtime: bool = False
    rate: int = P.SAMPLE_RATE_HZ  # raw PCM on stdin, and capture
    chunk_ms: int = 100
    no_translate: bool = False
    partials: bool = True
    speakers: bool = False
    num_speakers: int = 0
    glossary: Glossary | None = None
    reconnect: bool = True
    buffer_s: float = 30.0
    # where its events go
    fmt: str = "text"
    out: Path | None = None
    srt: Path | None = None
    vtt: Path | None = None
    subtitle_text: str = "auto"
    text_choice: str = "best"

    @classmethod
    def from_options(cls, kw: dict) -> StreamRequest:
        """From a command's `stream_options`; takes them out of `kw`."""
        return cls(**{f.name: kw.pop(f.name) for f in dataclasses.fields(cls) if f.name in kw})


def run_stream(source: str, request: StreamRequest) -> int:
    """Streams SOURCE as `request` says, printing its events; the exit code (1: errors)."""
    # One piece: the source, the outputs, the session and the Ctrl-C handler are made here and
    # closed together in one finally, on every way out.
    from livetranslate.client import ResilientSession
    from livetranslate.client.capture import SourceError, open_source

    r = request

    try:
        src = open_source(source, chunk_ms=r.chunk_ms, rate=r.rate, realtime=r.realtime)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        # without --session, a new session each run (a stored name would continue it)
        name = r.session or f"{src.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        options = SessionOptions(
            name,
            src.rate,
            r.source_language.lower(),
            r.target_language.lower(),
            translate=not r.no_translate,
            partials=r.partials,
            glossary=r.glossary or NO_GLOSSARY,
            speakers=r.speakers or r.num_speakers > 0,
            num_speakers=r.num_speakers,
        )
    except P.ProtocolError as exc:
        raise click.ClickException(str(exc)) from None
    subtitle_text = r.subtitle_text
    if subtitle_text == "auto":
        subtitle_text = "transcript" if r.no_translate else "translation"
    connection = open_connection(r.url, r.tls, r.ca, r.api_key)
    outputs = Outputs(
        r.fmt,
        r.out,
        r.srt,
        r.vtt,
        EventKind(subtitle_text),
        translate=not r.no_translate,
        best_language=options.target_language if r.text_choice == "best" else "",
        language=options.target_language,
    )
    session_runner = ResilientSession(
        connection,
        options,
        on_event=outputs.event,
        on_status=outputs.status,
        reconnect=r.reconnect,
        max_buffer_s=r.buffer_s,
    )
    outputs.session, outputs.runner = options.session, session_runner
    outputs.start_ticker()
    interrupts = []

    def on_interrupt(*_):
        interrupts.append(1)
        if len(interrupts) == 1:
            # said from a thread of its own: this handler may have cut into an event being shown
            stopping = "stopping: finishing the open utterance (Ctrl-C again to quit at once)"
            threading.Thread(target=outputs.status, args=(stopping,), daemon=True).start()
            session_runner.stop.set()
        else:
            outputs.close()
            click.echo(outputs.summary(), err=True)
            os._exit(130)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        session_runner.run(src)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        src.close()
        outputs.close()
    if interrupts:  # Ctrl-C: the open utterance was finished, the session is stored
        click.echo(outputs.summary(), err=True)
        return 130
    return 1 if outputs.errors else 0


@click.command()
@click.argument("source")
@stream_options
def stream(source, **kw):
    """Stream SOURCE to the server and print events as they arrive.

    SOURCE is an audio file (any format ffmpeg or libsndfile reads), '-' for raw PCM16 mono
    on stdin, mic[:DEVICE] for a microphone, or pulse:SOURCE for a PulseAudio/PipeWire
    source such as meeting_sink.monitor (see `livetranslate devices` and `livetranslate sink`).
    """
    sys.exit(run_stream(source, StreamRequest.from_options(kw)))


@click.command()
@click.argument("session")
@connection_options
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option(
    "--lang",
    "language",
    default=None,
    help="the language to read translations in (default: the speaker's target); the server "
    "translates into it while you watch",
)
@click.option(
    "--only",
    type=click.Choice(["translation", "transcript"]),
    default=None,
    help="print only the translations (of --lang) or only the transcripts",
)
def watch(session, url, tls, ca, api_key, fmt, language, only):
    """Follow SESSION as a viewer: its history so far, then live events until it ends. With
    several addresses in --url, a viewer whose server goes away follows on at the next."""
    from livetranslate.client import follow
    from livetranslate.languages import UnknownLanguage, code_for

    try:
        language = code_for(language) if language else None
    except UnknownLanguage as exc:
        raise click.BadParameter(str(exc), param_hint="--lang") from None
    connection = open_connection(url, tls, ca, api_key)
    failed, shown = False, 0
    outputs = Outputs(fmt, None, None, None, EventKind.TRANSLATION, only=only, language=language or "")
    outputs.session, outputs.state = session, "watching"

    def on_event(event: Event) -> None:
        nonlocal failed, shown
        # an `end` with an error: the viewer itself failed (no such session, dropped)
        failed = event.kind == EventKind.END and bool(event.error)
        if failed and shown == 0:  # refused before anything was shown: an error like any other
            raise click.ClickException(session_hint(event.error, stored_names(url, tls, ca, api_key)))
        shown += 1
        outputs.event(event)  # what --only leaves out, it leaves out

    previous = signal.signal(signal.SIGINT, outputs.interrupt)  # never in the middle of a redraw
    try:
        outputs.start_ticker()
        follow(connection, session, on_event, language=language, on_status=outputs.status)
    except KeyboardInterrupt:  # Ctrl-C: how a viewer stops watching, not an error
        outputs.interrupted = True
    except (ClientError, P.ProtocolError) as exc:
        raise click.ClickException(session_hint(str(exc), stored_names(url, tls, ca, api_key))) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        outputs.close()
    if outputs.interrupted:
        click.echo(outputs.summary(), err=True)
        sys.exit(130)
    sys.exit(1 if failed else 0)
