"""`speakers`: who spoke in a stored session (labels from `stream --speakers`)."""

from __future__ import annotations

import click

from livetranslate.cli.options import connection_options, open_client, session_hint, stored_names
from livetranslate.client import ClientError


@click.group()
def speakers():
    """Who spoke in a session streamed with speaker labels (`stream --speakers`)."""


@speakers.command("list")
@click.argument("session")
@connection_options
def speakers_list(session, url, tls, ca, api_key):
    """SESSION's speaker labels, each with its lines and how long it spoke, in the order they
    first spoke."""
    from livetranslate.cli.sessions import format_duration
    from livetranslate.present.speakers import speaker_times
    from livetranslate.present.textview import clean

    with open_client(url, tls, ca, api_key) as client:
        try:
            stored = client.sessions("get", session)
        except ClientError as exc:
            raise click.ClickException(session_hint(str(exc), stored_names(url, tls, ca, api_key))) from None
    found = speaker_times(stored["events"])
    if not found:
        click.echo(f"{session} has no speaker labels: stream it with --speakers to have them", err=True)
        return
    for s in found:
        lines = f"{s.lines} line" + ("" if s.lines == 1 else "s")
        click.echo(
            f"{clean(s.label):<4} {format_duration(s.seconds):>7}  {lines:<10} first at {format_duration(s.first_s)}"
        )
