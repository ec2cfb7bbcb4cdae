"""`gateway`: the OpenAI-compatible speech API (livetranslate/gateway/) on uvicorn."""

from __future__ import annotations

from pathlib import Path

import click

from livetranslate import protocol as P
from livetranslate.cli.options import connection_options, from_settings, open_connection, shown_default

MAX_UPLOAD_ENV = "LIVETRANSLATE_GATEWAY_MAX_UPLOAD_MB"


def _refused_for_key(message: str) -> bool:
    lowered = message.lower()
    return "needs an api key" in lowered or "needs a client key" in lowered


def check_server(url, tls, ca, api_key, *, host: str, insecure_no_key: bool) -> str:
    """What to say about the server at start. The gateway passes each caller's key on: beyond
    loopback it starts only in front of a server that demands a key (the loopback rule of
    `serve`), unless --insecure-no-key; a server it cannot reach now is said, not fatal."""
    from livetranslate.client import ClientError, PipelineClient
    from livetranslate.launcher import is_loopback

    def listing(key):
        with PipelineClient(open_connection(url, tls, ca, key)) as client:
            client.sessions("list")

    if not is_loopback(host) and not insecure_no_key:
        try:
            listing(None)
        except ClientError as exc:
            if not _refused_for_key(str(exc)):
                raise click.ClickException(
                    f"refusing to listen on {host}: cannot check that the server demands a key ({exc}). "
                    f"Start the gateway once the server answers, or listen on 127.0.0.1"
                ) from None
        else:
            raise click.ClickException(
                f"refusing to listen on {host}: the server at {url} takes requests without a key, so anyone "
                f"who reaches the gateway could use it and read every session. Start the server with a client "
                f"key (${P.API_KEY_ENV} or --keys-file of `serve`), or listen on 127.0.0.1, or pass "
                f"--insecure-no-key if the network is yours alone"
            )
    try:
        listing(api_key)
    except ClientError as exc:
        if _refused_for_key(str(exc)):
            return "the server demands a client key: callers send theirs as `Authorization: Bearer KEY`"
        return f"the server does not answer now ({exc}); requests get 503 until it does"
    return "the server answers" + (" (with the key given)" if api_key else "")


def _config(connection, ca, max_upload_mb, api_key, dashboard_url, speaker_links):
    """The app's settings; speaker links need the dashboard's secret that made them."""
    from livetranslate import share
    from livetranslate.gateway import GatewayConfig

    secret = share.dashboard_secret()
    if speaker_links and secret is None:
        raise click.UsageError(
            f"--speaker-links needs the dashboard's secret (${share.COOKIE_KEY_ENV} or {share.key_file()}): "
            f"the speaker links are made with it"
        )
    return GatewayConfig(
        url=connection.url,
        tls=connection.tls,
        ca=ca,
        max_upload_bytes=max_upload_mb * 2**20,
        speaker_links=speaker_links,
        gateway_key=api_key if speaker_links else None,
        speaker_secret=secret,
        dashboard_url=dashboard_url,
    )


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address the gateway listens on; beyond loopback only in front of a server that demands a "
    "client key, unless --insecure-no-key",
)
@click.option("--port", default=8080, show_default=True, help="the gateway's HTTP port")
@connection_options
@click.option(
    "--max-upload-mb",
    type=click.IntRange(1, 100_000),
    default=from_settings(MAX_UPLOAD_ENV),
    show_default=shown_default(MAX_UPLOAD_ENV),
    help="largest audio file accepted; larger uploads get 413",
)
@click.option(
    "--https-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="serve HTTPS with this certificate (PEM)",
)
@click.option(
    "--https-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the certificate's private key (PEM)",
)
@click.option(
    "--insecure-no-key",
    is_flag=True,
    help="listen beyond loopback in front of a server without a key: anyone who reaches the gateway "
    "can use the server and read every session; only on a network that is yours alone",
)
@click.option(
    "--dashboard-url",
    default=None,
    help="the dashboard's address as readers reach it: /speak shows the captions link of the session "
    "to hand to readers (without it, no link)",
)
@click.option(
    "--speaker-links",
    is_flag=True,
    help="let speaker links (`livetranslate share SESSION --speaker`) speak into their one session from "
    "/speak; their streams use the key given here; needs the dashboard's secret",
)
def gateway(
    host,
    port,
    url,
    tls,
    ca,
    api_key,
    max_upload_mb,
    https_cert,
    https_key,
    insecure_no_key,
    dashboard_url,
    speaker_links,
):
    """Serve an OpenAI-compatible speech API in front of the server: POST
    /v1/audio/transcriptions and /v1/audio/translations (json, text, srt, vtt, verbose_json,
    stream=true), GET /v1/models, and /speak, a page to speak from in a browser. Each request
    is one stored session, streamed through gRPC with the caller's key (`Authorization: Bearer
    KEY`, passed on to the server); the key given here only checks the server at start, and
    streams speaker links (--speaker-links). See docs/gateway.md."""
    import uvicorn

    from livetranslate.gateway import create_app

    if bool(https_cert) != bool(https_key):
        raise click.UsageError("HTTPS needs both --https-cert and --https-key")
    connection = open_connection(url, tls, ca, api_key)  # an unusable --url fails here
    said = check_server(url, tls, ca, api_key, host=host, insecure_no_key=insecure_no_key)
    config = _config(connection, ca, max_upload_mb, api_key, dashboard_url, speaker_links)
    scheme = "https" if https_cert else "http"
    click.echo(f"gateway on {scheme}://{host}:{port}/v1 in front of {connection.url}: {said}", err=True)
    click.echo(
        f"speak from a browser: {scheme}://{host}:{port}/speak"
        + ("" if dashboard_url else " (no readers' link: --dashboard-url)"),
        err=True,
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        ssl_certfile=str(https_cert) if https_cert else None,
        ssl_keyfile=str(https_key) if https_key else None,
        server_header=False,
        timeout_graceful_shutdown=5,
        log_level="info",
    )
