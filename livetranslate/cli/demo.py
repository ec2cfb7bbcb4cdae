"""`run` and `demo`: start Triton, stream one source through it, stop it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from livetranslate import protocol as P
from livetranslate import settings
from livetranslate.cli.options import (
    server_options,
    stream_options,
)
from livetranslate.cli.server import _log_to_file, _make_server, _start
from livetranslate.cli.streaming import run_stream

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"


@click.command()
@click.argument("source")
@stream_options
@server_options
def run(
    source,
    grpc_port,
    http_port,
    metrics_port,
    profile,
    model_repository,
    models_dir,
    llm,
    url,
    host,
    insecure_no_key,
    admin_key,
    store,
    **kw,
):
    """Start the server, stream SOURCE through it, print events, stop the server."""
    server = _make_server(
        grpc_port,
        http_port,
        metrics_port,
        profile,
        model_repository,
        models_dir,
        llm,
        host=host,
        insecure_no_key=insecure_no_key,
        admin_key=admin_key,
        api_key=kw["api_key"],
        store=store,
    )
    _log_to_file(server)
    try:  # Ctrl-C while Triton starts stops it too (it runs in a session of its own)
        _start(server)
        code = run_stream(source, url=server.grpc_url, **kw)
    finally:
        server.stop()
    sys.exit(code)


@click.command()
@click.option("--fast", is_flag=True, help="do not pace the audio in real time")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@server_options
def demo(
    fast,
    fmt,
    grpc_port,
    http_port,
    metrics_port,
    profile,
    model_repository,
    models_dir,
    llm,
    host,
    insecure_no_key,
    admin_key,
    store,
):
    """Start the server and stream the bundled German sample through it, live."""
    from livetranslate.quality.samples import make_all

    sample = make_all(SAMPLES_DIR)["speech"]
    click.echo(f"sample: {sample}", err=True)
    api_key = settings.client_key()
    server = _make_server(
        grpc_port,
        http_port,
        metrics_port,
        profile,
        model_repository,
        models_dir,
        llm,
        host=host,
        insecure_no_key=insecure_no_key,
        admin_key=admin_key,
        api_key=api_key,
        store=store,
    )
    _log_to_file(server)
    try:
        _start(server)
        code = run_stream(
            str(sample), server.grpc_url, None, "de", "en", not fast, fmt, P.SAMPLE_RATE_HZ, 100, api_key=api_key
        )
    finally:
        server.stop()
    sys.exit(code)
