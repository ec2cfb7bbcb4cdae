"""One home for settings: where a value comes from, the config file, the hand-off file a parent
writes for its child, `livetranslate config`, and docs/configuration.md made from the code."""

from __future__ import annotations

import ast
import json
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from livetranslate import cli, settings
from livetranslate.launcher import ServerOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path):
    """A config file of its own (never the user's), named by the environment given."""
    path = tmp_path / "config.toml"
    return path, {"LIVETRANSLATE_CONFIG": str(path)}


def test_an_option_wins_then_the_hand_off_then_the_environment_then_the_file_then_the_default(config, tmp_path):
    path, environ = config
    assert settings.lookup("LIVETRANSLATE_URL", environ) == ("localhost:8001", "default")
    path.write_text('url = "from-file:8001"\ndrain_grace_s = 7\n')
    assert settings.lookup("LIVETRANSLATE_URL", environ) == ("from-file:8001", str(path))
    assert settings.get("LIVETRANSLATE_DRAIN_GRACE_S", environ) == 7.0  # typed
    environ["LIVETRANSLATE_URL"] = "from-env:8001"
    assert settings.lookup("LIVETRANSLATE_URL", environ) == ("from-env:8001", "environment")
    handed = settings.write_handoff(
        {"LIVETRANSLATE_URL": "from-parent:8001", "LIVETRANSLATE_STORE": ""}, tmp_path / "handed.json"
    )
    assert stat.S_IMODE(handed.stat().st_mode) == 0o600
    environ[settings.SETTINGS_FILE] = str(handed)
    assert settings.lookup("LIVETRANSLATE_URL", environ) == ("from-parent:8001", "settings file")
    # what the parent resolved to nothing stays nothing, whatever the environment says
    environ["LIVETRANSLATE_STORE"] = "redis://elsewhere:6379/0"
    assert settings.get("LIVETRANSLATE_STORE", environ) is None


def test_the_config_file_refuses_secrets_unknown_names_and_broken_values(config):
    path, environ = config
    path.write_text('api_key = "s3cret"\n')
    with pytest.raises(settings.SettingsError, match="is a secret"):
        settings.get("LIVETRANSLATE_URL", environ)
    path.write_text('ulr = "typo:8001"\n')
    with pytest.raises(settings.SettingsError, match="unknown setting 'ulr'"):
        settings.get("LIVETRANSLATE_URL", environ)
    path.write_text("url = \n")
    with pytest.raises(settings.SettingsError, match="not a config file"):
        settings.get("LIVETRANSLATE_URL", environ)
    path.write_text('health_port = "eighty"\n')
    with pytest.raises(settings.SettingsError, match="LIVETRANSLATE_HEALTH_PORT='eighty'.*not a valid int"):
        settings.get("LIVETRANSLATE_HEALTH_PORT", environ)


def test_the_client_key_comes_from_the_environment_or_the_file_it_names(tmp_path):
    key = tmp_path / "key"
    key.write_text("k-123\n")
    assert (
        settings.client_key({"LIVETRANSLATE_API_KEY_FILE": str(key), "LIVETRANSLATE_CONFIG": "/nonexistent"}) == "k-123"
    )
    assert settings.client_key({"LIVETRANSLATE_API_KEY": "k-env", "LIVETRANSLATE_API_KEY_FILE": str(key)}) == "k-env"
    key.write_text("")
    with pytest.raises(settings.SettingsError, match="is empty"):
        settings.client_key({"LIVETRANSLATE_API_KEY_FILE": str(key), "LIVETRANSLATE_CONFIG": "/nonexistent"})


def test_every_command_finds_the_server_from_one_setting(monkeypatch, tmp_path):
    """LIVETRANSLATE_URL (or the config file) serves every client command: one place to set."""
    path = tmp_path / "config.toml"
    path.write_text('url = "127.0.0.1:1"\n')  # nothing listens on port 1
    monkeypatch.setenv("LIVETRANSLATE_CONFIG", str(path))
    monkeypatch.delenv("LIVETRANSLATE_URL", raising=False)
    for args in (["sessions"], ["export", "any"], ["watch", "any"]):
        out = CliRunner().invoke(cli.main, args)
        assert out.exit_code != 0 and "127.0.0.1:1" in out.output, (args, out.output)
    out = CliRunner().invoke(cli.main, ["config"])
    assert out.exit_code == 0 and re.search(r"LIVETRANSLATE_URL\s+127\.0\.0\.1:1\s+" + re.escape(str(path)), out.output)
    monkeypatch.setenv("LIVETRANSLATE_API_KEY", "never-shown")
    out = CliRunner().invoke(cli.main, ["config"])
    assert "never-shown" not in out.output and re.search(
        r"LIVETRANSLATE_API_KEY\s+\(set, hidden\)\s+environment", out.output
    )


def test_a_broken_config_file_is_an_error_in_plain_words_for_every_command(monkeypatch, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('ulr = "typo:8001"\n')
    monkeypatch.setenv("LIVETRANSLATE_CONFIG", str(path))
    for args in (["sessions"], ["share", "standup"], ["config"]):
        out = CliRunner().invoke(cli.main, args)
        assert out.exit_code == 1 and "unknown setting 'ulr'" in out.output and "Traceback" not in out.output, args
        assert not isinstance(out.exception, settings.SettingsError)


def test_config_says_which_setting_is_broken(monkeypatch):
    monkeypatch.setenv("LIVETRANSLATE_HEALTH_PORT", "eighty")
    out = CliRunner().invoke(cli.main, ["config"])
    assert out.exit_code == 1 and "LIVETRANSLATE_HEALTH_PORT" in out.output and "cannot be used" in out.output


def test_the_models_get_their_settings_in_a_file_not_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVETRANSLATE_STORE_LEASE_S", "4")
    monkeypatch.setenv("LIVETRANSLATE_URL", "not-for-the-models:1")
    options = ServerOptions(store="", llm="gemma3-270m", env={"LIVETRANSLATE_NO_AUDIO_S": "5", "OMP_NUM_THREADS": "1"})
    handed, env = options.handoff(), options.environment()
    assert handed["LIVETRANSLATE_STORE"] == "" and handed["LIVETRANSLATE_LLM"] == "gemma3-270m"
    assert handed["LIVETRANSLATE_NO_AUDIO_S"] == "5" and handed["LIVETRANSLATE_STORE_LEASE_S"] == "4.0"
    assert "LIVETRANSLATE_URL" not in handed  # only what the models read
    assert env["OMP_NUM_THREADS"] == "1" and env["LIVETRANSLATE_INTERNAL_TOKEN"] == options.internal_token
    assert [name for name in env if name.startswith(settings.PREFIX)] == ["LIVETRANSLATE_INTERNAL_TOKEN"]


def test_configuration_docs_are_made_from_the_code():
    """docs/configuration.md is `python -m livetranslate.settings`: regenerate it when this fails."""
    assert (ROOT / "docs" / "configuration.md").read_text() == settings.markdown()


def _code_files():
    yield from (ROOT / "livetranslate").rglob("*.py")
    yield from (ROOT / "model_repository").rglob("model.py")
    yield ROOT / "dashboard" / "app.py"


def _names_a_variable(node) -> bool:
    """A key that is a LIVETRANSLATE_ name, or a constant that holds one (..._ENV)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.startswith(settings.PREFIX)
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name.endswith("_ENV") or name == "env"


def test_only_the_settings_module_reads_livetranslate_variables():
    readers = []
    for path in _code_files():
        if path.name == "settings.py" and path.parent.name == "livetranslate":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            read = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                owner = ast.unparse(node.func.value)
                if (
                    node.func.attr in ("get", "pop", "setdefault") and owner.endswith("environ")
                ) or node.func.attr == "getenv":
                    read = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
                read = node.slice
            elif isinstance(node, ast.keyword) and node.arg in ("envvar", "auto_envvar_prefix"):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if read is not None and _names_a_variable(read):
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == []


def test_every_variable_the_code_names_is_documented():
    named = set()
    for path in [
        *_code_files(),
        ROOT / "scripts" / "setup.sh",
        ROOT / "Dockerfile",
        *(ROOT / "deploy").rglob("*.yaml"),
    ]:
        named |= set(re.findall(r"\bLIVETRANSLATE_[A-Z_]*[A-Z]\b", path.read_text()))
    assert sorted(named - set(settings.VARIABLES)) == []


def test_the_handoff_file_is_json_of_known_settings_only(tmp_path):
    with pytest.raises(settings.SettingsError, match="no such settings: LIVETRANSLATE_NOPE"):
        settings.write_handoff({"LIVETRANSLATE_NOPE": "1"}, tmp_path / "x.json")
    path = settings.write_handoff({"LIVETRANSLATE_URL": "a:1", "LIVETRANSLATE_CA": None}, tmp_path / "x.json")
    assert json.loads(path.read_text()) == {"LIVETRANSLATE_URL": "a:1"}
