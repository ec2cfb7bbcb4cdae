"""`sessions`, `export`, `prune`, `share` and `probe`: the stored sessions and the server's health."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import click

from livetranslate import settings
from livetranslate import share as _share
from livetranslate.cli.options import (
    connection_options,
    from_settings,
    open_client,
    session_hint,
    shown_default,
    store_url,
    stored_session,
)
from livetranslate.client import ClientError
from livetranslate.protocol import Event, EventKind, SessionOptions
from livetranslate.store import STORE_ENV


@click.command()
@connection_options
@click.option("--timeout", default=5.0, show_default=True, help="seconds the pipeline has to answer")
def probe(url, tls, ca, api_key, timeout):
    """Exit 0 when the `pipeline` model answers a request in time (a liveness check that
    catches a wedged pipeline, not only a live Triton process)."""
    import uuid

    result: list = []

    def ask():
        try:
            with open_client(url, tls, ca, api_key) as client:
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


@click.command("sessions")
@connection_options
def sessions_list(url, tls, ca, api_key):
    """List stored sessions, newest first: when each started, how long it ran (or has been
    running), its lines, how many viewers follow it now (live sessions), and its languages."""
    with open_client(url, tls, ca, api_key) as client:
        try:
            infos = client.sessions("list")
        except ClientError as exc:
            raise click.ClickException(str(exc)) from None
    if not infos:
        click.echo("no sessions stored yet: `livetranslate stream` starts one", err=True)
        return
    width = max(7, *(len(info["name"]) for info in infos))
    click.echo(f"{'session':<{width}}  state  started           duration  lines  viewers  languages")
    now = time.time()
    for info in infos:
        click.echo(session_row(info, width, now))


def session_row(info: dict, width: int, now: float) -> str:
    """One line of `livetranslate sessions`: name, state, start, duration, lines, viewers now
    (over every server; "-" for an ended session, or a server that does not count them), languages."""
    import datetime

    started = datetime.datetime.fromtimestamp(info["started_at"]).strftime("%Y-%m-%d %H:%M")
    until = info.get("ended_at") or now if info["state"] == "ended" else now
    lines = info["counts"].get("transcript", 0)
    viewers = info.get("viewers")
    watching = str(viewers) if info["state"] == "live" and isinstance(viewers, int) else "-"
    extra = [lang for lang in info.get("languages", []) if lang != info["target_language"]]
    more = f" (+{','.join(extra)})" if extra else ""
    terms = len(info.get("glossary") or [])
    name = info["name"] if info["name"].isprintable() else repr(info["name"])
    return (
        f"{name:<{width}}  {info['state']:<5}  {started}  {format_duration(until - info['started_at']):>8}  "
        f"{lines:>5}  {watching:>7}  {info['source_language']}->{info['target_language']}{more}"
        + (f"  glossary: {terms} terms" if terms else "")
    )


def format_duration(seconds: float) -> str:
    """1:05:09, 12:03, 0:45: hours only when there are any."""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@click.command()
@click.argument("session")
@connection_options
@click.option("--format", "fmt", type=click.Choice(["txt", "srt", "vtt", "jsonl"]), default="txt", show_default=True)
@click.option(
    "--lang",
    default="both",
    show_default=True,
    help="source, target (the speaker's), both, or a language code the session was translated into "
    "for its viewers (`livetranslate sessions` lists them)",
)
@click.option(
    "--text",
    "text_choice",
    type=click.Choice(["best", "first"]),
    default="best",
    show_default=True,
    help="which translation: best (each sentence's, replaced by the in-context translation of its "
    "window where one came) or first (each sentence's first complete translation)",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="file to write (default: standard output)",
)
@click.option(
    "--summary", "with_summary", is_flag=True, help="the session's summary on top (`livetranslate summary` makes it)"
)
def export(session, url, tls, ca, api_key, fmt, lang, text_choice, output, with_summary):
    """Export a stored session as plain text, SubRip, WebVTT or jsonl."""
    from livetranslate.present.export import export as render

    stored = stored_session(session, url, tls, ca, api_key)
    try:
        text = render(
            stored["events"],
            fmt,
            lang.strip().lower(),
            stored["info"].get("target_language", ""),
            text_choice,
            with_summary,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="the server's session directory (default: $LIVETRANSLATE_DATA_DIR or ~/.local/share/livetranslate/sessions)",
)
@click.option(
    "--older-than",
    metavar="AGE",
    default=None,
    help="remove ended sessions last active longer ago than this: 30d, 12h, 90m",
)
@click.option(
    "--max-size",
    metavar="SIZE",
    default=None,
    help="then remove the oldest ended sessions until the directory holds at most this: 500MB, 2GB",
)
@click.option("--dry-run", is_flag=True, help="show what would be removed, remove nothing")
@click.option(
    "--store",
    default=None,
    callback=store_url,
    help=f"the sessions in this Redis instead (or ${STORE_ENV}); servers may keep running",
)
def prune(data_dir, older_than, max_size, dry_run, store):
    """Remove old ended sessions from a data directory, never live ones; without limits, list
    the sessions and their sizes. Removing needs the directory to itself (no server on it).
    With a Redis store, the sessions in Redis."""
    from livetranslate.store import (
        SessionStore,
        StoreError,
        default_data_dir,
        format_age,
        format_size,
        open_store,
        parse_duration,
        parse_size,
    )

    def parsed(parse, value, option):
        try:
            return None if value is None else parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None

    max_age_s, max_bytes = (
        parsed(parse_duration, older_than, "--older-than"),
        parsed(parse_size, max_size, "--max-size"),
    )
    listing = max_age_s is None and max_bytes is None
    store_url = store if store is not None else settings.get(STORE_ENV)
    if store_url and max_bytes is not None:
        raise click.BadParameter(
            "Redis bounds its own size (its maxmemory setting): use --older-than", param_hint="--max-size"
        )
    data_dir = data_dir or default_data_dir()
    if not store_url and not data_dir.is_dir():
        raise click.ClickException(f"{data_dir}: no such data directory")
    try:
        store = open_store(store_url) if store_url else SessionStore(data_dir)
        infos = store.sessions() if listing else store.prune(max_age_s, max_bytes, dry_run=dry_run)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    now = time.time()
    for info in infos:
        name = info.name if info.name.isprintable() else repr(info.name)  # nothing for the terminal to obey
        click.echo(
            f"{name:<30} {info.state:<6} {format_size(info.size_bytes):>9}  {format_age(now - info.last_active)} ago"
        )
    count = f"{len(infos)} session{'' if len(infos) == 1 else 's'}, {format_size(sum(i.size_bytes for i in infos))}"
    click.echo(count if listing else f"{'would remove' if dry_run else 'removed'} {count}")


@click.command()
@click.argument("session")
@click.option("--lang", default=None, help="the language to show (default: the session's translation)")
@click.option(
    "--dashboard",
    "dashboard_url",
    default=from_settings(_share.DASHBOARD_URL_ENV),
    show_default=shown_default(_share.DASHBOARD_URL_ENV),
    help=f"the dashboard's address as coworkers reach it (or ${_share.DASHBOARD_URL_ENV})",
)
@click.option(
    "--style",
    type=click.Choice(_share.STYLES),
    default=None,
    help="dark (default) or transparent (an OBS browser source)",
)
@click.option("--ahead", is_flag=True, help="a link to a session that has not started yet (an invitation): not checked")
@click.option(
    "--speaker",
    is_flag=True,
    help=f"a speaker link instead: the gateway's /speak page (${_share.GATEWAY_URL_ENV}) with a token that "
    f"lets its holder speak into SESSION only (`gateway --speaker-links`); needs the dashboard's secret",
)
@connection_options
def share(session, lang, dashboard_url, style, ahead, speaker, url, tls, ca, api_key):
    """Print a link to SESSION's captions page to paste into the meeting's chat. With the
    dashboard's secret at hand (it has a login) the link carries a read-only token for that
    one session, so nobody needs an account. With --speaker, a link to speak into SESSION
    from a browser instead (the gateway's /speak page)."""
    from livetranslate.languages import UnknownLanguage, code_for
    from livetranslate.protocol import ProtocolError

    try:
        SessionOptions(session)
    except ProtocolError as exc:
        raise click.BadParameter(str(exc).replace("SESSION", "the session"), param_hint="SESSION") from None
    names = [] if ahead else _known_sessions(url, tls, ca, api_key)
    if not ahead and session not in names:  # a link to nothing helps nobody: say so, and what is there
        raise click.BadParameter(
            session_hint(f"no session named {session!r}", names) + " (a link before it starts: --ahead)",
            param_hint="SESSION",
        )
    try:
        lang = code_for(lang) if lang is not None else None
    except UnknownLanguage as exc:
        raise click.BadParameter(str(exc), param_hint="--lang") from None
    secret = _share.dashboard_secret()
    if speaker:
        if secret is None:
            raise click.ClickException(
                f"a speaker link needs the dashboard's secret (${_share.COOKIE_KEY_ENV} or {_share.key_file()})"
            )
        gateway_url = settings.get(_share.GATEWAY_URL_ENV)
        lang = lang.lower() if lang else None
        click.echo(_share.speaker_link(gateway_url, session, _share.speaker_token(session, secret), lang))
        return
    if secret is None:
        click.echo(
            f"note: no dashboard secret here (${_share.COOKIE_KEY_ENV} or {_share.key_file()}): the link has "
            f"no token and opens only a dashboard without login",
            err=True,
        )
    token = _share.share_token(session, secret) if secret else None
    click.echo(_share.share_link(dashboard_url, session, lang.lower() if lang else None, token, style))


def _known_sessions(url, tls, ca, api_key) -> list[str]:
    """The sessions `share` may link to: those of the server at --url, or, when it cannot be
    reached, those of this machine's data directory."""
    try:
        with open_client(url, tls, ca, api_key) as client:
            return [info["name"] for info in client.sessions("list")]
    except (ClientError, click.ClickException) as exc:
        from livetranslate.store import SessionStore, StoreError, default_data_dir

        try:
            if default_data_dir().is_dir():
                return [info.name for info in SessionStore(default_data_dir()).sessions()]
        except StoreError:
            pass
        raise click.ClickException(
            f"cannot tell whether the session exists: {exc}; give the server's --url (or $LIVETRANSLATE_URL)"
        ) from None
