"""`serve`, `run` and `demo`: the commands that start Triton."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from livetranslate import protocol as P
from livetranslate import settings
from livetranslate.cli.options import (
    from_settings,
    read_key,
    server_options,
    shown_default,
)
from livetranslate.launcher import ServerError, ServerOptions, TritonServer
from livetranslate.launcher.health import HEALTH_PORT_ENV

# Where `serve` writes Triton's own log ("-": the terminal, e.g. in a container whose runtime
# collects standard output); default: server.default_log_file
TRITON_LOG_ENV = "LIVETRANSLATE_TRITON_LOG"


# `serve` starts Triton again when it dies on its own, this many times in this many seconds
RESTARTS, RESTART_WINDOW_S = 5, 600


# the options `server_options` adds to a command, and the ServerOptions field each sets
SERVER_FIELDS = {
    "grpc_port": "grpc_port",
    "http_port": "http_port",
    "metrics_port": "metrics_port",
    "profile": "profile",
    "llm": "llm",
    "host": "host",
    "insecure_no_key": "allow_no_key",
    "admin_key": "admin_key",
    "store": "store",
}


def server_options_from(kw: dict, **more) -> ServerOptions:
    """The ServerOptions a command's options ask for; takes them out of `kw` (what is left
    belongs to the command). `more`: other ServerOptions fields (api_key, keys_file, ...)."""
    opts = ServerOptions(**{field: kw.pop(option) for option, field in SERVER_FIELDS.items()}, **more)
    model_repository, models_dir = kw.pop("model_repository"), kw.pop("models_dir")
    if model_repository:
        opts.model_repository = model_repository.resolve()
    if models_dir:
        opts.models_dir = models_dir.resolve()
    return opts


def _make_server(opts: ServerOptions, log_file: Path | None = None) -> TritonServer:
    """A server for these options, refused at once (with the reason) when they expose it or
    name a broken keys file."""
    try:
        opts.check_exposure()
        opts.check_keys()
    except ServerError as exc:
        raise click.ClickException(str(exc)) from None
    return TritonServer(opts, log_file=log_file)


def _log_to_file(server, path: Path | None = None) -> None:
    """Triton's own log goes to a file (the previous run's kept as .1); the terminal gets a
    short status. Without a path: the default one for this gRPC port."""
    from livetranslate.launcher import default_log_file

    path = path or default_log_file(server.options.grpc_port)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
    except OSError as exc:
        raise click.ClickException(
            f"cannot write Triton's log to {path}: {exc.strerror or exc} "
            f"(choose another with --log-file, or --log-file - for this terminal)"
        ) from None
    server.log_file = path


def _start(server) -> None:
    from livetranslate.launcher import PROFILE_MODELS, ServerError
    from livetranslate.weights.catalog import DEFAULT_LLM, LLM_ENV

    o = server.options
    llm = f", LLM {o.llm or settings.get(LLM_ENV) or DEFAULT_LLM}" if o.profile == "cpu" else ""
    click.echo(f"starting Triton: {o.profile} profile{llm}; its log: {server.log_file or 'this terminal'}", err=True)
    try:
        server.start()
        took = server.wait_ready()
    except ServerError as exc:
        server.stop()
        raise click.ClickException(str(exc)) from None
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
    click.echo(
        f"  gRPC     {host}:{o.grpc_port}   clients: livetranslate stream FILE --url {host}:{o.grpc_port}"
        + (" --tls" if o.tls_cert else ""),
        err=True,
    )
    click.echo(f"  HTTP     http://{host}:{o.http_port}", err=True)
    click.echo(f"  metrics  http://{host}:{o.metrics_port}/metrics", err=True)
    if health is not None:
        click.echo(f"  health   http://{host}:{health.port}/ready", err=True)
    if host != o.host:
        click.echo(f"  (listening on {o.host}: every interface)", err=True)
    click.echo("Ctrl-C (or SIGTERM) stops it", err=True)


@click.command()
@server_options
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="serve gRPC over TLS with this certificate (PEM)",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the certificate's private key (PEM)",
)
@click.option(
    "--api-key-file",
    "api_key",
    type=click.Path(dir_okay=False),
    default=None,
    callback=read_key(P.API_KEY_ENV),
    help=f"file holding the client key (or ${P.API_KEY_ENV}): clients send it (header "
    f"{P.API_KEY_HEADER}) for streaming, viewing and metadata; health stays open for probes",
)
@click.option(
    "--keys-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="named client keys, one per line: `name key [streams=N] [viewers=N]`; each client keeps within "
    "its own limits (default 2 speaker streams, 20 viewers); instead of --api-key-file",
)
@click.option(
    "--retention-days",
    type=click.FloatRange(min=0),
    default=None,
    help="at start, remove ended sessions older than this (default: keep all)",
)
@click.option(
    "--retention-max-mb",
    type=click.FloatRange(min=0),
    default=None,
    help="at start, remove the oldest ended sessions until the data holds at most this",
)
@click.option(
    "--no-audio-s",
    type=click.FloatRange(min=0),
    default=None,
    help="close a speaker stream that has sent no audio for this long; its client is told to reconnect, "
    "its session is kept (default 60; silence counts as audio; 0: never)",
)
@click.option(
    "--no-audio-yield-s",
    type=click.FloatRange(min=0),
    default=None,
    help="when the server is full, a new speaker takes the place of the stream that has sent no audio "
    "for longest, if for more than this (default 15; 0: never)",
)
@click.option(
    "--log-file",
    default=from_settings(TRITON_LOG_ENV),
    metavar="PATH",
    help="where Triton's own log goes (default: ~/.local/state/livetranslate/triton-GRPC_PORT.log; "
    f"'-': this terminal, e.g. in a container; or ${TRITON_LOG_ENV})",
)
@click.option(
    "--drain-grace-s",
    type=click.FloatRange(min=0),
    default=from_settings(P.DRAIN_GRACE_ENV),
    show_default=shown_default(P.DRAIN_GRACE_ENV),
    help="on Ctrl-C or SIGTERM: new speakers and viewers are refused at once, the live streams get this "
    "many seconds to end before they are ended (a second Ctrl-C ends them now); with several "
    f"servers sharing a store they go on on another one (or ${P.DRAIN_GRACE_ENV})",
)
@click.option(
    "--restart/--no-restart",
    default=True,
    show_default=True,
    help=f"start Triton again when it dies on its own (at most {RESTARTS} times in "
    f"{RESTART_WINDOW_S // 60} minutes); sessions go on and clients reconnect",
)
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    default=from_settings(HEALTH_PORT_ENV),
    help="serve /ready (503 once stopping) and /live on this port, on --host, for load balancers "
    f"and Kubernetes probes (default: none; or ${HEALTH_PORT_ENV})",
)
def serve(
    tls_cert,
    tls_key,
    keys_file,
    retention_days,
    retention_max_mb,
    no_audio_s,
    no_audio_yield_s,
    log_file,
    drain_grace_s,
    restart,
    health_port,
    **kw,
):
    """Start Triton on the model repository and wait; Ctrl-C or SIGTERM stops it cleanly:
    new clients are refused at once, live streams get --drain-grace-s, then Triton stops.
    The terminal gets a short status; Triton's own log goes to a file (--log-file)."""
    # One piece: the signal handlers, the restart loop and the stop share one try/finally, so that
    # every way out (a signal while starting, Triton dying too often, Ctrl-C) stops Triton once.
    from livetranslate.launcher import stop_bound_s

    server = _make_server(
        server_options_from(
            kw,
            keys_file=keys_file,
            tls_cert=tls_cert,
            tls_key=tls_key,
            drain_grace_s=drain_grace_s,
            api_key=kw.pop("api_key"),
        )
    )
    from livetranslate.pipeline.options import NO_AUDIO_ENV

    for env, value in (
        ("LIVETRANSLATE_RETENTION_DAYS", retention_days),
        ("LIVETRANSLATE_RETENTION_MAX_MB", retention_max_mb),
        (NO_AUDIO_ENV["no_audio_s"], no_audio_s),
        (NO_AUDIO_ENV["no_audio_yield_s"], no_audio_yield_s),
    ):
        if value is not None:
            server.options.env[env] = str(value)
    if log_file != "-":
        _log_to_file(server, Path(log_file) if log_file else None)
    health = _health(server, health_port) if health_port else None
    stopping: list[bool] = []

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
            assert server.process is not None  # started (or started again)
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
            click.echo(
                f"restarting Triton ({len(died)} of at most {RESTARTS} restarts in "
                f"{RESTART_WINDOW_S // 60} minutes); clients reconnect and their sessions go on",
                err=True,
            )
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
        raise click.ClickException(
            f"cannot serve health on {server.options.host}:{port}: {exc.strerror or exc} "
            f"(is another server running? choose another --health-port)"
        ) from None
