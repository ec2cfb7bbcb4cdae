"""`config`: the effective settings and where each came from."""

from __future__ import annotations

import click

from livetranslate import settings


@click.command("config")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="also the variables of the set-up script, the container and the engine build",
)
def config(show_all):
    """Print every setting as this machine sets it, and where its value comes from: the
    environment, the config file, or the default. An option given to a command wins over all
    of them; docs/configuration.md lists them all."""
    try:
        path = settings.get("LIVETRANSLATE_CONFIG")
    except settings.SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"config file: {path} ({'read' if path.is_file() else 'none there'})")
    problems = 0
    for variable in settings.VARIABLES.values():
        if not variable.python and not show_all:
            continue
        if not variable.python:
            click.echo(f"{variable.name:<38} {'(read by ' + variable.who + ')':<44}")
            continue
        try:
            value, source = settings.lookup(variable.name)
        except settings.SettingsError as exc:
            problems += 1
            click.echo(f"{variable.name:<38} error: {exc}")
            continue
        click.echo(f"{variable.name:<38} {settings.shown(variable.name, value):<44} {source}")
    if problems:
        raise click.ClickException(f"{problems} setting(s) cannot be used")
