"""`livetranslate` command: one click group; each command group lives in a module of its own.

server.py     serve                      streaming.py  stream, watch
demo.py       run, demo
sessions.py   sessions, export, prune,   dashboard.py  dashboard
              share, probe               capture.py    languages, devices, sink
gateway.py    gateway (OpenAI-compatible API)
models.py     models fetch, models list  config.py     config
revisions.py  edit, summary
options.py    the options they share     outputs.py    where a stream's events go
"""

from __future__ import annotations

import click

from livetranslate import settings


class _Main(click.Group):
    """The group: a setting that cannot be used (a broken config file, a value of the wrong kind)
    is an error in plain words, whichever command reads it. Ctrl-C that a command does not
    handle itself ends it with exit code 130, not click's "Aborted!" (`stream` and `watch`
    say what they did before they go)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except settings.SettingsError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            click.echo(err=True)  # the prompt on a line of its own, after the terminal's ^C
            ctx.exit(130)


@click.group(cls=_Main)
@click.version_option(package_name="livetranslate")
def main():
    """Real-time speech transcription and translation on Triton."""


def _register() -> None:
    from livetranslate.cli import (
        capture,
        config,
        dashboard,
        demo,
        gateway,
        models,
        revisions,
        server,
        sessions,
        speakers,
        streaming,
    )

    for command in (
        server.serve,
        streaming.stream,
        demo.run,
        demo.demo,
        streaming.watch,
        sessions.probe,
        sessions.sessions_list,
        sessions.export,
        revisions.edit,
        revisions.summary,
        speakers.speakers,
        sessions.prune,
        dashboard.dashboard,
        gateway.gateway,
        sessions.share,
        capture.languages,
        capture.devices,
        capture.sink,
        models.models,
        config.config,
    ):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
