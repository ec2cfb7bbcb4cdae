"""`speakers`: who spoke in a stored session (labels from `stream --speakers`)."""

from __future__ import annotations

import click

from livetranslate.cli.options import connection_options, stored_session


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

    found = speaker_times(stored_session(session, url, tls, ca, api_key)["events"])
    if not found:
        click.echo(f"{session} has no speaker labels: stream it with --speakers to have them", err=True)
        return
    for s in found:
        lines = f"{s.lines} line" + ("" if s.lines == 1 else "s")
        click.echo(
            f"{clean(s.label):<4} {format_duration(s.seconds):>7}  {lines:<10} first at {format_duration(s.first_s)}"
        )
