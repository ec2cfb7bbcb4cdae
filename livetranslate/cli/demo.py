"""`run` and `demo`: start Triton, stream one source through it, stop it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from livetranslate import settings
from livetranslate.cli.options import (
    server_options,
    stream_options,
)
from livetranslate.cli.server import _log_to_file, _make_server, _start, server_options_from
from livetranslate.cli.streaming import StreamRequest, run_stream

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"


@click.command()
@click.argument("source")
@stream_options
@server_options
def run(source, **kw):
    """Start the server, stream SOURCE through it, print events, stop the server."""
    kw.pop("url")  # the server started here
    server = _make_server(server_options_from(kw, api_key=kw["api_key"]))
    _log_to_file(server)
    try:  # Ctrl-C while Triton starts stops it too (it runs in a session of its own)
        _start(server)
        code = run_stream(source, StreamRequest.from_options({**kw, "url": server.grpc_url}))
    finally:
        server.stop()
    sys.exit(code)


# `run` streams to the server it starts: the stream options' --url would name another one
for _param in run.params:
    if isinstance(_param, click.Option) and _param.name == "url":
        _param.hidden = True


@click.command()
@click.option("--fast", is_flag=True, help="do not pace the audio in real time")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@server_options
def demo(fast, fmt, **kw):
    """Start the server and stream the bundled German sample through it, live."""
    from livetranslate.quality.samples import make_all

    sample = make_all(SAMPLES_DIR)["speech"]
    click.echo(f"sample: {sample}", err=True)
    api_key = settings.client_key()
    server = _make_server(server_options_from(kw, api_key=api_key))
    _log_to_file(server)
    try:
        _start(server)
        request = StreamRequest(
            server.grpc_url, api_key=api_key, source_language="de", target_language="en", realtime=not fast, fmt=fmt
        )
        code = run_stream(str(sample), request)
    finally:
        server.stop()
    sys.exit(code)
