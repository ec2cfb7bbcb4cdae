"""Named client keys (livetranslate.keys): the file's format, its errors, and finding a
client by the key it presents."""

import pytest

from livetranslate.keys import DEFAULT_STREAMS, DEFAULT_VIEWERS, Client, Keys, KeysError
from livetranslate.launcher import ServerError, ServerOptions

GOOD = """
# who        key                                 limits
alice        alice-key-0123456789abcdef
dashboard    dash-key-0123456789abcdef           streams=4 viewers=150   # many readers
gateway      gate-key-0123456789abcdef           streams=8 viewers=0
"""


def test_a_keys_file_names_each_client_with_its_limits():
    keys = Keys.parse(GOOD)
    assert keys.names == ["alice", "dashboard", "gateway"] and len(keys) == 3
    assert keys.identify("alice-key-0123456789abcdef") == Client("alice", DEFAULT_STREAMS, DEFAULT_VIEWERS)
    assert keys.identify("dash-key-0123456789abcdef") == Client("dashboard", 4, 150)
    assert keys.identify("gate-key-0123456789abcdef") == Client("gateway", 8, 0)
    for wrong in ("", "alice", "alice-key-0123456789abcdeF", "alice-key-0123456789abcdef "):
        assert keys.identify(wrong) is None


@pytest.mark.parametrize(
    "text, says",
    [
        ("alice", "give a name and its key"),
        ("alice short", "too short"),
        ("al/ice alice-key-0123456789abcdef", "must be 1-64 letters"),
        ("a alice-key-0123456789abcdef\na bob-key-0123456789abcdef00", "named twice"),
        ("a alice-key-0123456789abcdef\nb alice-key-0123456789abcdef", "has the key of 'a'"),
        ("a alice-key-0123456789abcdef streams=two", "limits are streams=N and viewers=N"),
        ("a alice-key-0123456789abcdef speakers=2", "limits are streams=N and viewers=N"),
        ("# nobody\n\n", "names no client"),
    ],
)
def test_a_bad_keys_file_says_which_line_and_why(text, says):
    with pytest.raises(KeysError, match=says) as caught:
        Keys.parse(text, "keys.txt")
    assert "keys.txt" in str(caught.value)


def test_the_keys_file_must_be_private_and_replaces_the_single_key(tmp_path):
    path = tmp_path / "keys"
    path.write_text(GOOD)
    path.chmod(0o644)
    with pytest.raises(KeysError, match="readable by others"):
        Keys.load(path)
    path.chmod(0o600)
    assert Keys.load(path).names == ["alice", "dashboard", "gateway"]
    with pytest.raises(KeysError, match="cannot read"):
        Keys.load(tmp_path / "missing")
    with pytest.raises(ServerError, match="not both"):
        ServerOptions(keys_file=path, api_key="k" * 20).check_keys()
    # a keys file is a key: the server may listen beyond loopback
    options = ServerOptions(host="0.0.0.0", keys_file=path)
    options.check_exposure()
    command = " ".join(options.command(tmp_path))
    assert "alice-key" not in command and "inference" not in command  # Triton checks no single key
    assert "trace,logging,metadata:x-livetranslate-admin-key=" in command  # no client reads metadata
    assert "--grpc-header-forward-pattern=^triton-grpc-protocol-x-livetranslate-key$" in command
    assert options.handoff()["LIVETRANSLATE_KEYS_FILE"] == str(path.resolve())
    assert "LIVETRANSLATE_KEYS_FILE" not in options.environment()  # a file hands the settings over
    assert not any("alice-key" in value for value in options.environment().values())  # the file's path only
