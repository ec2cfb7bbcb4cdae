"""`languages`, `devices` and `sink`: what a speaker can capture, and in which languages."""

from __future__ import annotations

import click

from livetranslate import protocol as P


@click.command()
def languages():
    """Languages Whisper hears and the LLM translates into: a code or a name works for
    `stream` and `run` --language and --target (German, Deutsch, de and de-DE are the same)."""
    from livetranslate.languages import NAMES

    for code, name in sorted(NAMES.items(), key=lambda item: item[1]):
        click.echo(f"{code:<4} {name}")
    click.echo(f"{P.AUTO_LANGUAGE:<4} detect the spoken language (--language only)")


@click.command()
def devices():
    """List capture devices: microphones (mic:N) and PulseAudio sources (pulse:NAME)."""
    from livetranslate.client.capture import list_devices

    for line in list_devices():
        click.echo(line)


@click.group()
def sink():
    """A PulseAudio null sink to route a meeting app into (its monitor is capturable)."""


def _sink(action: str, name: str) -> None:
    from livetranslate.client import capture

    try:
        click.echo(getattr(capture, f"sink_{action}")(name))
    except capture.SourceError as exc:
        raise click.ClickException(str(exc)) from None


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
