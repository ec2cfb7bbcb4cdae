"""`stream` and `watch`: a speaker's stream and a viewer's."""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from livetranslate import protocol as P
from livetranslate.cli.options import (
    connection_options,
    open_connection,
    session_hint,
    stream_options,
)
from livetranslate.cli.outputs import Outputs
from livetranslate.client import ClientError
from livetranslate.protocol import Event, EventKind, SessionOptions


def run_stream(
    source,
    url,
    session,
    source_language,
    target_language,
    realtime,
    fmt,
    rate,
    chunk_ms,
    no_translate=False,
    out=None,
    srt=None,
    vtt=None,
    subtitle_text="auto",
    reconnect=True,
    buffer_s=30.0,
    tls=False,
    ca=None,
    api_key=None,
    partials=True,
    glossary=None,
    text_choice="best",
) -> int:
    # One piece: the source, the outputs, the session and the Ctrl-C handler are made here and
    # closed together in one finally, on every way out.
    from livetranslate.client import ResilientSession
    from livetranslate.client.capture import SourceError, open_source

    try:
        src = open_source(source, chunk_ms=chunk_ms, rate=rate, realtime=realtime)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        # without --session, a new session each run (a stored name would continue it)
        name = session or f"{src.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        options = SessionOptions(
            name,
            src.rate,
            source_language.lower(),
            target_language.lower(),
            translate=not no_translate,
            partials=partials,
            **({"glossary": glossary} if glossary else {}),
        )
    except P.ProtocolError as exc:
        raise click.ClickException(str(exc)) from None
    if subtitle_text == "auto":
        subtitle_text = "transcript" if no_translate else "translation"
    connection = open_connection(url, tls, ca, api_key)
    outputs = Outputs(
        fmt,
        out,
        srt,
        vtt,
        EventKind(subtitle_text),
        translate=not no_translate,
        best_language=options.target_language if text_choice == "best" else "",
    )
    session_runner = ResilientSession(
        connection,
        options,
        on_event=outputs.event,
        on_status=outputs.status,
        reconnect=reconnect,
        max_buffer_s=buffer_s,
    )
    outputs.session, outputs.runner = options.session, session_runner
    outputs.start_ticker()
    interrupts = []

    def on_interrupt(*_):
        interrupts.append(1)
        if len(interrupts) == 1:
            outputs.status("stopping: finishing the open utterance (Ctrl-C again to quit at once)")
            session_runner.stop.set()
        else:
            outputs.close()
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
    sys.exit(run_stream(source, **kw))


# `watch --only`: the kinds each choice prints (errors and the end always)
ONLY = {
    "translation": {
        EventKind.TRANSLATION,
        EventKind.PARTIAL_TRANSLATION,
        EventKind.ENHANCED,
        EventKind.ERROR,
        EventKind.END,
    },
    "transcript": {EventKind.TRANSCRIPT, EventKind.PARTIAL, EventKind.ERROR, EventKind.END},
}


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
    outputs = Outputs(fmt, None, None, None, EventKind.TRANSLATION)
    outputs.session, outputs.state = session, "watching"
    if only is not None:
        outputs.view = None  # one kind: a line per event, not side-by-side columns

    def on_event(event: Event) -> None:
        nonlocal failed, shown
        # an `end` with an error: the viewer itself failed (no such session, dropped)
        failed = event.kind == EventKind.END and bool(event.error)
        if failed and shown == 0:  # refused before anything was shown: an error like any other
            raise click.ClickException(session_hint(event.error))
        shown += 1
        if only is None or event.kind in ONLY[only]:
            outputs.event(event)

    try:
        outputs.start_ticker()
        follow(connection, session, on_event, language=language, on_status=outputs.status)
    except (ClientError, P.ProtocolError) as exc:
        raise click.ClickException(session_hint(str(exc))) from None
    finally:
        outputs.close()
    sys.exit(1 if failed else 0)
