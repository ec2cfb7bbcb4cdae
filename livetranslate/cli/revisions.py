"""`edit` and `summary`: what an organiser adds to a stored session afterwards."""

from __future__ import annotations

import click

from livetranslate.cli.options import connection_options, open_client, session_hint, stored_names
from livetranslate.client import ClientError, summarize
from livetranslate.client import edit as edit_line
from livetranslate.protocol import EventKind, ProtocolError


@click.command()
@click.argument("session")
@click.argument("segment_id", type=click.IntRange(min=0))
@click.argument("text")
@connection_options
def edit(session, segment_id, text, url, tls, ca, api_key):
    """Correct line SEGMENT_ID of SESSION to TEXT.

    SEGMENT_ID is the number `watch` shows beside each line (and `segment_id` in `export
    --format jsonl`). The correction is kept beside the original (nothing is overwritten),
    translated again into the session's languages, shown to the readers still connected,
    and used by exports."""
    with open_client(url, tls, ca, api_key) as client:
        try:
            events = edit_line(client, session, segment_id, text)
        except (ClientError, ProtocolError) as exc:
            raise click.ClickException(_hinted(str(exc), url, tls, ca, api_key)) from None
    for event in events:
        if event.kind == EventKind.CORRECTION:
            click.echo(f"#{event.segment_id} [{event.language}] {event.text}")
        elif event.kind == EventKind.ERROR:
            click.echo(f"warning: {event.text}", err=True)


@click.command()
@click.argument("session")
@click.option("--lang", default="", help="the summary's language (default: the session's translation language)")
@connection_options
def summary(session, lang, url, tls, ca, api_key):
    """Summarize SESSION: what it was about, its decisions and action items.

    Made by the server's LLM from the stored transcript (corrections included), in the
    background: the live streams go first, so it takes a while on a busy server. The summary
    is kept with the session (`export --summary` puts it on top of an export)."""
    with open_client(url, tls, ca, api_key) as client:
        try:
            made = summarize(client, session, lang.strip().lower())
        except (ClientError, ProtocolError) as exc:
            raise click.ClickException(_hinted(str(exc), url, tls, ca, api_key)) from None
    click.echo(made.text)


def _hinted(message: str, url, tls, ca, api_key) -> str:
    if "no session named" not in message:
        return message
    return session_hint(message, stored_names(url, tls, ca, api_key))
