"""The options the commands share: where the server is and how to reach it, what a stream
sends, and the server's own settings."""

from __future__ import annotations

from pathlib import Path

import click

from livetranslate import protocol as P
from livetranslate import settings
from livetranslate.client import ClientError
from livetranslate.store import STORE_ENV

URL_ENV, TLS_ENV, CA_ENV, API_KEY_FILE_ENV = (
    "LIVETRANSLATE_URL",
    "LIVETRANSLATE_TLS",
    "LIVETRANSLATE_CA",
    "LIVETRANSLATE_API_KEY_FILE",
)


# --- server ---------------------------------------------------------------------------
def read_key(env: str):
    """A click callback: the key from the file given, else from the settings (`env`; for the
    client key also the file $LIVETRANSLATE_API_KEY_FILE names). Keys never travel as
    arguments: `ps` shows every process's command line."""

    def callback(ctx, param, value):
        if value is None:  # a broken setting is the group's plain error, not this option's
            return settings.client_key() if env == P.API_KEY_ENV else settings.get(env)
        try:
            return settings.read_secret_file(value)
        except settings.SettingsError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def from_settings(name: str):
    """A click default: the setting `name` (environment, config file, default), read when the
    command runs."""

    def default():
        value = settings.get(name)
        return str(value) if isinstance(value, Path) else value

    return default


def shown_default(name: str) -> str:
    """What --help shows as the default of an option with a setting behind it."""
    default = settings.VARIABLES[name].default
    return f"${name}" + (f", else {default}" if default not in (None, "", False) and not callable(default) else "")


def server_options(f):
    f = click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="address gRPC, HTTP and metrics listen on; beyond loopback needs a client key "
        f"(${P.API_KEY_ENV}, or the file ${API_KEY_FILE_ENV} names; serve and run: --api-key-file)",
    )(f)
    f = click.option(
        "--insecure-no-key",
        is_flag=True,
        help="listen beyond loopback without a key: anyone who reaches the ports can stream, "
        "read every session and use this machine; only on a network that is yours alone",
    )(f)
    f = click.option(
        "--admin-key-file",
        "admin_key",
        type=click.Path(dir_okay=False),
        default=None,
        callback=read_key(P.ADMIN_KEY_ENV),
        expose_value=True,
        help=f"file holding the admin key (or ${P.ADMIN_KEY_ENV}): model control, shared memory, "
        "statistics, trace, logging; without one these are closed",
    )(f)
    f = click.option("--grpc-port", default=8001, show_default=True)(f)
    f = click.option("--http-port", default=8000, show_default=True)(f)
    f = click.option("--metrics-port", default=8002, show_default=True)(f)
    f = click.option("--profile", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)(f)
    f = click.option(
        "--model-repository",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="default: the project's model_repository/",
    )(f)
    f = click.option(
        "--models-dir", type=click.Path(path_type=Path), default=None, help="where `models fetch` put the weights"
    )(f)
    f = click.option(
        "--llm", default=None, help="cpu profile LLM: qwen2.5-1.5b (default, best), gemma3-270m (fast) or a GGUF path"
    )(f)
    f = click.option(
        "--store",
        default=None,
        callback=store_url,
        help="keep sessions in Redis, shared by several servers: redis://host:6379/0 (or "
        f"${STORE_ENV}); default: files in the data directory",
    )(f)
    return f


def store_url(ctx, param, value):
    from livetranslate.store import check_store_url

    if value is None:
        return None
    try:
        url = check_store_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    import urllib.parse

    if urllib.parse.urlsplit(url).password:
        raise click.BadParameter(
            f"a password on the command line is visible to every user of this machine: "
            f"put the URL in ${STORE_ENV} instead"
        )
    return url


# --- streaming ------------------------------------------------------------------------
def connection_options(f):
    """Where the server is and how to reach it: every client command (and the dashboard)."""
    f = click.option(
        "--url",
        default=from_settings(URL_ENV),
        show_default=shown_default(URL_ENV),
        help="Triton gRPC address; several, comma-separated (replicas sharing sessions): the first "
        "that answers is used, and a lost connection goes on at the next",
    )(f)
    f = click.option("--tls", is_flag=True, default=from_settings(TLS_ENV), help=f"connect with TLS (or ${TLS_ENV}=1)")(
        f
    )
    f = click.option(
        "--ca",
        type=click.Path(exists=True, dir_okay=False),
        default=from_settings(CA_ENV),
        show_default=shown_default(CA_ENV),
        help="CA certificate (PEM) that signed the server's certificate",
    )(f)
    f = click.option(
        "--api-key-file",
        "api_key",
        type=click.Path(dir_okay=False),
        default=None,
        callback=read_key(P.API_KEY_ENV),
        help=f"file holding the key of a server started with one (or ${P.API_KEY_ENV}, or the file "
        f"${API_KEY_FILE_ENV} names)",
    )(f)
    return f


def language_callback(allow_auto: bool):
    """A click callback: a language code or name (de, German, Deutsch, de-DE) as its code."""

    def callback(ctx, param, value):
        from livetranslate.languages import UnknownLanguage, code_for

        try:
            return code_for(value, allow_auto=allow_auto)
        except UnknownLanguage as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def stream_options(f):
    # One piece: a list of options, one per statement, read top to bottom as --help shows them.
    f = connection_options(f)
    f = click.option(
        "--session",
        default=None,
        help="session name; an existing session goes on (default: the source's name and the time)",
    )(f)
    f = click.option(
        "--language",
        "source_language",
        default=P.DEFAULT_SOURCE_LANGUAGE,
        show_default=True,
        callback=language_callback(allow_auto=True),
        help="spoken language: a code or name (de, German, Deutsch), or 'auto' to detect it",
    )(f)
    f = click.option(
        "--target",
        "target_language",
        default=P.DEFAULT_TARGET_LANGUAGE,
        show_default=True,
        callback=language_callback(allow_auto=False),
        help="language to translate into: a code or name",
    )(f)
    f = click.option("--realtime", is_flag=True, help="send a file no faster than it plays")(f)
    f = click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)(f)
    f = click.option(
        "--rate",
        default=P.SAMPLE_RATE_HZ,
        show_default=True,
        help="sample rate of raw PCM16 on stdin, and of mic/pulse capture",
    )(f)
    f = click.option("--chunk-ms", default=100, show_default=True, help="audio per request")(f)
    f = click.option("--no-translate", is_flag=True, help="transcripts only")(f)
    f = click.option(
        "--partials/--no-partials",
        default=True,
        show_default=True,
        help="interim text of the utterance still being spoken (dimmed, replaced in place)",
    )(f)
    f = click.option(
        "--speakers/--no-speakers",
        default=True,
        show_default=True,
        help="label each line with its speaker (S1, S2, ...; shown once a second voice is heard), told apart by "
        "voice on the server; `speakers rename` names them",
    )(f)
    f = click.option(
        "--num-speakers",
        type=click.IntRange(0, P.MAX_SPEAKERS),
        default=0,
        show_default=True,
        help="at most this many speakers, when you know (implies --speakers; 0: unknown)",
    )(f)
    f = click.option(
        "--out",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="also write every event as jsonl to this file, as it arrives",
    )(f)
    f = click.option(
        "--srt",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="write SubRip subtitles as they arrive (valid at every moment)",
    )(f)
    f = click.option(
        "--vtt",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="write WebVTT subtitles as they arrive (valid at every moment)",
    )(f)
    f = click.option(
        "--subtitle-text",
        type=click.Choice(["auto", "transcript", "translation"]),
        default="auto",
        show_default=True,
        help="auto: the translation, or the transcript with --no-translate",
    )(f)
    f = click.option(
        "--text",
        "text_choice",
        type=click.Choice(["best", "first"]),
        default="best",
        show_default=True,
        help="subtitles of the translation: best (a sentence's cue is replaced by the in-context "
        "translation when it comes) or first (each sentence's first complete translation)",
    )(f)
    f = click.option(
        "--reconnect/--no-reconnect",
        default=True,
        show_default=True,
        help="on a lost connection, reconnect and continue the session",
    )(f)
    f = click.option(
        "--buffer-s",
        default=30.0,
        show_default=True,
        help="audio kept while disconnected; older audio is dropped with a warning",
    )(f)
    f = click.option(
        "--glossary",
        type=click.Path(dir_okay=False),
        default=None,
        callback=read_glossary,
        help="names and terms to get right: one per line, optionally `term = translation`",
    )(f)
    return f


def read_glossary(ctx, param, path):
    from livetranslate import glossary

    try:
        return glossary.load(path) if path else glossary.NO_GLOSSARY
    except glossary.GlossaryError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def open_connection(url, tls, ca, api_key):
    from livetranslate.client import Connection

    try:
        return Connection(url, tls=tls, ca=ca, api_key=api_key)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None


def open_client(url, tls, ca, api_key):
    """A client of the first server of --url that answers."""
    from livetranslate.client import PipelineClient

    connection = open_connection(url, tls, ca, api_key)
    try:
        return PipelineClient(connection)
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None


def session_hint(message: str, names: list[str] | None = None) -> str:
    """A missing session's message, with the closest stored names (`names`), or where to find
    the right one."""
    import difflib
    import re

    missing = re.search(r"no session named '(.*)'", message)
    if missing is None:
        return message
    close = difflib.get_close_matches(missing.group(1), names or [], n=3, cutoff=0.5)
    if close:
        return f"{message}; did you mean {' or '.join(repr(name) for name in close)}?"
    return f"{message}: `livetranslate sessions` lists the stored sessions"


def stored_names(url, tls, ca, api_key) -> list[str]:
    """The names of the sessions the server has stored ([] when it cannot say)."""
    try:
        with open_client(url, tls, ca, api_key) as client:
            return [info["name"] for info in client.sessions("list")]
    except (ClientError, click.ClickException):
        return []


def stored_session(session, url, tls, ca, api_key) -> dict:
    """A stored session (`info` and `events`) from the server; a missing one is a
    ClickException with the closest stored names."""
    with open_client(url, tls, ca, api_key) as client:
        try:
            return client.sessions("get", session)
        except ClientError as exc:
            raise click.ClickException(session_hint(str(exc), stored_names(url, tls, ca, api_key))) from None
