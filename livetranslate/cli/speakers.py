"""`speakers`: who spoke in a stored session (labels from `stream --speakers`), and their names."""

from __future__ import annotations

import click

from livetranslate.cli.options import connection_options, open_client, session_hint, stored_names, stored_session


@click.group()
def speakers():
    """Who spoke in a session streamed with speaker labels (`stream --speakers`), and their names."""


@speakers.command("list")
@click.argument("session")
@connection_options
def speakers_list(session, url, tls, ca, api_key):
    """SESSION's speakers, each with its name (when given), its lines and how long it spoke,
    in the order they first spoke."""
    from livetranslate.cli.sessions import format_duration
    from livetranslate.present.speakers import speaker_times
    from livetranslate.present.terminal import clean

    found = speaker_times(stored_session(session, url, tls, ca, api_key)["events"])
    if not found:
        click.echo(f"{session} has no speaker labels: stream it with --speakers to have them", err=True)
        return
    width = max(len(clean(s.name)) for s in found)
    for s in found:
        lines = f"{s.lines} line" + ("" if s.lines == 1 else "s")
        name = f"{clean(s.name):<{width}}  " if width else ""
        click.echo(
            f"{clean(s.label):<4} {name}{format_duration(s.seconds):>7}  {lines:<10} "
            f"first at {format_duration(s.first_s)}"
        )


@speakers.command("rename")
@click.argument("session")
@click.argument("label")
@click.argument("name")
@connection_options
def speakers_rename(session, label, name, url, tls, ca, api_key):
    """Call speaker LABEL (S1, S2, ... as `speakers list` shows them) of SESSION by NAME.

    The name is kept with the session, readers still connected see it from now on (terminal,
    captions, dashboard), and exports use it: "Anna: " in text and SRT, a voice tag in WebVTT."""
    from livetranslate.actions import SessionAction
    from livetranslate.client import ClientError, rename
    from livetranslate.protocol import ProtocolError

    try:
        SessionAction("rename", session, text=name, speaker=label)  # a plain answer before connecting
    except ProtocolError as exc:
        raise click.UsageError(str(exc)) from None
    with open_client(url, tls, ca, api_key) as client:
        try:
            named = rename(client, session, label, name)
        except (ClientError, ProtocolError) as exc:
            message = str(exc)
            if "no session named" in message:
                message = session_hint(message, stored_names(url, tls, ca, api_key))
            raise click.ClickException(message) from None
    from livetranslate.present.terminal import clean

    click.echo(f"{clean(named.speaker)} is {clean(named.text)}")
