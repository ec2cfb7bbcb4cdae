"""Every `--help` tells the truth: each command and subcommand of `livetranslate` is rendered,
and every option its help names exists (on that command, or on a command the same sentence
names), every variable it shows is a setting (livetranslate/settings.py), and every default it
shows is the real one: the option's own, the setting's, or the value the code uses."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
import pytest

from livetranslate import settings
from livetranslate.cli import main

ROOT = Path(__file__).resolve().parents[1]


def walk(command: click.Command, path: tuple[str, ...] = ("livetranslate",)):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(main))
BY_NAME = {path[-1]: command for path, command in COMMANDS if len(path) > 1}


def flags(command: click.Command) -> set[str]:
    """Every spelling of every option the command shows (--x, --no-x, -o), --help included."""
    found = {"--help"}
    for param in options(command):
        found.update(param.opts, param.secondary_opts)
    return found


def options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden]


def rendered(path: tuple[str, ...], command: click.Command) -> str:
    """The help as the terminal shows it, one option a line (no wrapping inside a name)."""
    ctx = click.Context(command, info_name=" ".join(path), terminal_width=10_000, max_content_width=10_000)
    return command.get_help(ctx)


def entries(path, command) -> list[tuple[click.Option | None, str]]:
    """The help's parts: (None, the description), then (option, its line) for each option."""
    text = rendered(path, command)
    description = text.split("\nOptions:")[0].split("\n", 1)[1]
    lines = text.split("\nOptions:", 1)[1].split("\nCommands:")[0].splitlines()
    out: list[tuple[click.Option | None, str]] = [(None, description)]
    for option in options(command):
        [line] = [line for line in lines if re.match(rf"\s+(?:-\w, )?{re.escape(option.opts[-1])}\b", line)]
        out.append((option, line))
    return out


@pytest.fixture
def clean_settings(monkeypatch, tmp_path):
    """No setting set: every default is the built-in one (HOME a folder of its own)."""
    for name in list(os.environ):
        if name.startswith(settings.PREFIX) or name.startswith("XDG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LIVETRANSLATE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.setattr(settings, "_handoff", None)
    return tmp_path


def real_default(option: click.Option, command: click.Command):
    ctx = click.Context(command)
    return option.get_default(ctx, call=True)


IDS = [" ".join(path) for path, _ in COMMANDS]


# --- options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_every_option_a_help_names_exists(path, command):
    own = flags(command)
    for option, text in entries(path, command):
        if option is not None:  # the option's own name(s) at the start of its line
            text = text.strip().split("  ", 1)[-1]
        for named in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", text):
            if named in own:
                continue
            # another command's option: that command is named in the same text
            named_commands = [name for name, other in BY_NAME.items() if re.search(rf"(?<![\w-]){name}(?![\w-])", text)]
            assert any(named in flags(BY_NAME[name]) for name in named_commands), (
                f"`{' '.join(path)} --help` names {named}, an option neither of this command nor of a "
                f"command it names ({', '.join(named_commands) or 'none'}): {text.strip()!r}"
            )


# --- settings ---------------------------------------------------------------------------------
VARIABLE = re.compile(r"\$?\b(LIVETRANSLATE_[A-Z0-9_]+)")


@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_every_variable_a_help_shows_is_a_setting_of_that_option(path, command):
    for option, text in entries(path, command):
        for name in VARIABLE.findall(text):
            assert name in settings.VARIABLES, f"`{' '.join(path)} --help` shows ${name}, which is no setting"
            variable = settings.VARIABLES[name]
            if option is not None and variable.option and re.search(rf"\(or \${name}\b", text):
                # "(or $VAR)": this option and the variable set the same thing
                assert variable.option in option.opts, (
                    f"`{' '.join(path)} --help`: {option.opts[-1]} says it is set by ${name} too, but "
                    f"that variable is the setting of {variable.option}"
                )


SHOWN = re.compile(r"\$(LIVETRANSLATE_[A-Z0-9_]+)(?:, else (.+))?")


@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_every_default_shown_in_brackets_is_the_real_one(path, command, clean_settings, monkeypatch):
    """`[default: ($VAR, else X)]`: the option reads VAR, and X is VAR's default (and the option's)."""
    for option in options(command):
        if not isinstance(option.show_default, str):
            continue  # True: click shows the real default itself
        match = SHOWN.fullmatch(option.show_default)
        assert match, f"{' '.join(path)} {option.opts[-1]}: [default: {option.show_default}] says where from?"
        name, shown = match.groups()
        variable = settings.VARIABLES[name]
        default = variable.default_value({})
        if shown is not None:
            assert shown == str(default), (
                f"{' '.join(path)} {option.opts[-1]} shows {shown}, the setting's is {default}"
            )
        value = real_default(option, command)
        assert (value in (None, False) and default in (None, False)) or str(value) == str(default)
        sample = {"int": "7", "float": "7.5", "bool": "1"}.get(variable.kind, "/elsewhere/x")
        monkeypatch.setenv(name, sample)  # the option follows the variable
        assert str(real_default(option, command)) == str(variable.parse(sample)), f"{option.opts[-1]} ignores ${name}"
        monkeypatch.delenv(name)


# --- defaults told in words -------------------------------------------------------------------
def _pipeline_parameter(key: str) -> str:
    config = (ROOT / "model_repository" / "pipeline" / "config.pbtxt").read_text()
    return re.search(rf'key: "{key}", value: {{ string_value: "([^"]*)"', config).group(1)


def told_defaults() -> dict[str, str]:
    """Option -> the default its help tells in words, as the code has it. An option that tells
    a default of its own and is missing here fails the test below: add it, from the code."""
    from livetranslate import keys
    from livetranslate.dashboard.status import beside
    from livetranslate.launcher.options import default_log_file
    from livetranslate.share import STYLES
    from livetranslate.weights.catalog import DEFAULT_LLM

    log = str(default_log_file(8001)).replace(str(Path.home()), "~").replace("8001", "GRPC_PORT")
    return {
        "--no-audio-s": _pipeline_parameter("no_audio_s"),
        "--no-audio-yield-s": _pipeline_parameter("no_audio_yield_s"),
        "--keys-file": f"{keys.DEFAULT_STREAMS} speaker streams, {keys.DEFAULT_VIEWERS} viewers",
        "--llm": DEFAULT_LLM,
        "--log-file": log,
        "--http-url": f"the --url host, port {beside('host:1', 8000).rsplit(':', 1)[1]}",
        "--metrics-url": f"the --url host, port {beside('host:1', 8002, '/metrics').rsplit(':', 1)[1][:4]}",
        "--style": STYLES[0],
        "--model-repository": "the project's model_repository/",
    }


# "(default: X", "(default X", "; default: X", "default: X" opening the help, and "X (default)"
TOLD = re.compile(
    r"(?:(?:\(|;\s|^)default:?\s+(?P<value>[^;)]+))|(?P<before>[\w.~/-]+) \(default[,)]",
    re.MULTILINE,
)
# words, not a value to compare: "the session's translation", "none", "keep all", ...
DESCRIBED = re.compile(r"(the |none$|keep all$|all known$|standard output$|files in )")


def told(text: str):
    """(value, the setting it is the default of or None) for each default told in `text`."""
    for match in TOLD.finditer(text):
        value = (match.group("value") or match.group("before")).strip()
        near = re.search(r"\$(LIVETRANSLATE_[A-Z0-9_]+)(?: \w+)? $", text[: match.start()])
        inside = re.fullmatch(r"\$(LIVETRANSLATE_[A-Z0-9_]+),? (?:or|else) (.+)", value)
        if inside:
            yield inside.group(2), inside.group(1)
        elif near and match.group("value"):  # "$VAR names (default X)"
            yield value, near.group(1)
        else:
            yield value, None


def as_shown(value) -> str:
    text = str(value)
    home = str(Path.home())
    return "~" + text[len(home) :] if text.startswith(home) else text


@pytest.mark.parametrize("path,command", COMMANDS, ids=IDS)
def test_every_default_told_in_words_is_the_real_one(path, command, clean_settings):
    expected = told_defaults()
    for option, text in entries(path, command):
        body = text.strip().split("  ", 1)[-1] if option is not None else text
        for value, variable in told(body):
            where = f"`{' '.join(path)} --help`" + (f" {option.opts[-1]}" if option is not None else "")
            if variable is not None:  # a setting's default
                real = as_shown(settings.VARIABLES[variable].default_value({}))
                assert value == real, f"{where} tells ${variable}'s default as {value!r}; it is {real!r}"
            elif option is not None and option.opts[-1] in expected:
                assert value == expected[option.opts[-1]], f"{where} tells its default as {value!r}"
            elif option is not None and value == "none":
                assert real_default(option, command) is None, f"{where} says none, its default is not"
            else:
                assert DESCRIBED.match(value), f"{where} tells a default ({value!r}) this test cannot check"


def test_every_default_told_in_words_is_checked():
    """No stale entry in told_defaults: each option is in some help, telling its default."""
    telling = {
        option.opts[-1]
        for path, command in COMMANDS
        for option, text in entries(path, command)[1:]
        if list(told(text.strip().split("  ", 1)[-1]))
    }
    assert set(told_defaults()) <= telling


# --- what users asked about -------------------------------------------------------------------
def test_the_dashboard_says_where_its_secret_is_kept(clean_settings, monkeypatch):
    """It is kept in a file (not made anew at every start): logins and share links outlive a
    restart. The help says so, and names the file as the code has it."""
    from livetranslate import share

    text = " ".join(rendered(("livetranslate", "dashboard"), BY_NAME["dashboard"]).split())
    assert "random" not in text
    assert "$LIVETRANSLATE_DASHBOARD_COOKIE_KEY" in text and "$LIVETRANSLATE_DASHBOARD_KEY_FILE" in text
    assert f"(default {as_shown(share.key_file())})" in text
    first = share.ensure_dashboard_secret()  # what `dashboard` does at its start
    assert share.key_file().read_text().strip() == first and share.ensure_dashboard_secret() == first
    assert share.key_file().stat().st_mode & 0o777 == 0o600


def test_run_shows_no_url_it_would_ignore():
    """`run` streams to the server it starts."""
    text = rendered(("livetranslate", "run"), BY_NAME["run"])
    assert "--url" not in text and "--grpc-port" in text
