"""`serve`'s first run on the embedded log: secrets made once, owner-only, the environment's winning."""

import os
from pathlib import Path

import pytest

from ingest.config import IngestSettings
from tajo_events.errors import ConfigError
from tajo_events.first_run import SECRETS_FILE, needs_local_secrets, try_it, use_local_secrets


def test_no_variables_makes_every_secret_once_owner_only(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    assert needs_local_secrets(env)
    first = use_local_secrets(tmp_path / "data", env)
    assert first.made
    assert set(first.taken) == {"BREVO_WEBHOOK_SECRET", "BREVO_WEBHOOK_TOKEN", "TAJO_API_TOKEN"}
    assert (tmp_path / "data" / SECRETS_FILE).stat().st_mode & 0o777 == 0o600
    IngestSettings.from_env(env)  # the webhook endpoint is closed: it needs the secret or the token
    again: dict[str, str] = {}
    second = use_local_secrets(tmp_path / "data", again)
    assert not second.made
    assert again == env  # the same secrets on every later run


def test_the_environment_wins_and_only_what_it_lacks_is_taken(tmp_path: Path) -> None:
    env = {"BREVO_WEBHOOK_TOKEN": "set-by-the-operator"}
    assert needs_local_secrets(env)  # no API token
    taken = use_local_secrets(tmp_path, env)
    assert taken.taken == ("TAJO_API_TOKEN",)
    assert env["BREVO_WEBHOOK_TOKEN"] == "set-by-the-operator"
    assert "BREVO_WEBHOOK_SECRET" not in env  # the operator chose the webhook's way
    assert not needs_local_secrets({"BREVO_WEBHOOK_TOKEN": "x", "TAJO_API_TOKEN": "y"})


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    use_local_secrets(tmp_path, {})
    os.chmod(tmp_path / SECRETS_FILE, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        use_local_secrets(tmp_path, {})


def test_the_printed_commands_carry_no_secret(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    local = use_local_secrets(tmp_path, env)
    printed = try_it("http://127.0.0.1:8080", env, local)
    assert "X-Brevo-Signature: sha256=" in printed
    for value in env.values():
        assert value not in printed
    assert str(tmp_path / SECRETS_FILE) in printed  # the API token is read from the file
