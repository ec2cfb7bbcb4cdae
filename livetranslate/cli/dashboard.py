"""`dashboard`: starts the Streamlit dashboard."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from livetranslate import dashboard as _board
from livetranslate import protocol as P
from livetranslate import settings
from livetranslate import share as _share
from livetranslate.cli.options import connection_options, from_settings, shown_default


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address the dashboard listens on (0.0.0.0: every interface, needs a login)",
)
@click.option("--port", default=8501, show_default=True, help="dashboard HTTP port")
@connection_options
@click.option(
    "--http-url",
    default=from_settings(_board.HTTP_ENV),
    help=f"Triton HTTP address (or ${_board.HTTP_ENV}; default: the --url host, port 8000)",
)
@click.option(
    "--metrics-url",
    default=from_settings(_board.METRICS_ENV),
    help=f"Triton metrics address (or ${_board.METRICS_ENV}; default: the --url host, port 8002)",
)
@click.option(
    "--credentials",
    default=from_settings(_board.CREDENTIALS_ENV),
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"YAML file of users and bcrypt-hashed passwords (or ${_board.CREDENTIALS_ENV})",
)
@click.option(
    "--add-user",
    metavar="NAME",
    default=None,
    help="add NAME to --credentials (or set its password), asking for the password, and exit",
)
@click.option("--no-login", is_flag=True, help="no login: only with a loopback --host")
@click.option(
    "--max-upload-mb",
    type=click.IntRange(1, 100_000),
    default=from_settings(_board.MAX_UPLOAD_ENV),
    show_default=shown_default(_board.MAX_UPLOAD_ENV),
    help="largest audio file the dashboard accepts",
)
def dashboard(host, port, url, http_url, metrics_url, tls, ca, api_key, credentials, add_user, no_login, max_upload_mb):
    """Start the Streamlit dashboard (live sessions, uploads, server health), behind a login.

    One secret signs the login cookie and the share links' tokens:
    $LIVETRANSLATE_DASHBOARD_COOKIE_KEY, else the one kept in the file
    $LIVETRANSLATE_DASHBOARD_KEY_FILE names (default ~/.config/livetranslate/dashboard.key),
    made (mode 600) when a dashboard with a login first starts and kept from then on: logins and
    share links outlive a restart. Deleting that file (or changing the variable) revokes every
    login and link."""
    # One piece: the option checks, the hand-off file and the exec are one path that ends in
    # exec (nothing runs after it); --add-user is its only other way out.
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
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"{add_user.strip().lower()} saved in {credentials}; start the dashboard with --credentials {credentials}",
            err=True,
        )
        return
    if no_login and credentials:
        raise click.UsageError("--no-login and --credentials: choose one")
    if no_login and not _board.is_loopback(host):
        raise click.ClickException(
            f"--no-login is only allowed with a loopback --host (127.0.0.1, ::1, localhost): "
            f"anyone who reaches {host} would read every session"
        )
    if not no_login:
        if credentials is None:
            raise click.ClickException(_board.NO_CREDENTIALS)
        try:
            _board.load_credentials(credentials)  # a broken file fails here, not in the browser
        except _board.CredentialsError as exc:
            raise click.ClickException(str(exc)) from None

    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    # the dashboard's settings go in a file (mode 600) named on its command line; of the
    # secrets, the client key and the cookie key go in its environment, never on a command line
    handed = {
        _board.URL_ENV: url,
        _board.HTTP_ENV: http_url or "",
        _board.METRICS_ENV: metrics_url or "",
        _board.TLS_ENV: "1" if tls else "0",
        _board.CA_ENV: str(Path(ca).resolve()) if ca else "",
        _board.MAX_UPLOAD_ENV: str(max_upload_mb),
        _board.NO_LOGIN_ENV: "1" if no_login else "0",
        _board.CREDENTIALS_ENV: "" if no_login else str(credentials.resolve()),
        _share.KEY_FILE_ENV: str(_share.key_file()),
    }
    env = {name: value for name, value in os.environ.items() if name not in settings.VARIABLES}
    if not no_login:  # one secret for the login cookie and the share links, kept across restarts
        env[_board.COOKIE_KEY_ENV] = _share.ensure_dashboard_secret()
    if api_key:
        env[P.API_KEY_ENV] = api_key
    handoff = settings.state_dir() / f"dashboard-{port}.json"
    handoff.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.write_handoff(handed, handoff)
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.maxUploadSize",
        str(max_upload_mb),
        "--server.enableXsrfProtection",
        "true",
        # an error shows its type only: messages and tracebacks (paths, server replies) stay in the log
        "--client.showErrorDetails",
        "type",
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--",
        "--settings",
        str(handoff),
    ]
    # streamlit takes this process's place: Ctrl-C and SIGTERM (a test, a container runtime)
    # reach it directly, and no orphaned server is left behind
    os.execve(sys.executable, cmd, env)
