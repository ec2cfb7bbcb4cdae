"""`dashboard`: starts the Streamlit dashboard."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from livetranslate import dashboard as _board
from livetranslate import protocol as P
from livetranslate import share as _share
from livetranslate.cli.options import connection_options


@click.command()
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

    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
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
