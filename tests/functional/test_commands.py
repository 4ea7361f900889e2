"""The commands users are told to run: CI runs the README's test command, services refuse to run open."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.readme import ROOT, readme_test_command, run_command


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [
        line for line in lines if line and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert commands == [readme_test_command()]
    assert readme_test_command() == "make test"
    assert "make run" in run_command()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
    return subprocess.run(
        [sys.executable, "-m", "tajo_events.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ingester_refuses_to_start_without_a_secret_or_token() -> None:
    result = _cli("ingest", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2
    assert "BREVO_WEBHOOK_SECRET" in result.stderr
    assert "BREVO_WEBHOOK_TOKEN" in result.stderr


def test_projections_api_refuses_to_start_without_a_token() -> None:
    result = _cli("projections", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2
    assert "TAJO_API_TOKEN" in result.stderr


def test_services_without_a_broker_say_how_to_get_one() -> None:
    result = _cli("worker", env={})
    assert result.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["worker"], {"TAJO_PARTITIONS": "four"}, "TAJO_PARTITIONS must be an integer"),
        (["replay", "--from-time", "yesterday"], {}, "--from-time must be an ISO-8601 time"),
        (["serve"], {"TAJO_API_TOKEN": "t", "TAJO_MAX_BODY_BYTES": "0"}, "TAJO_MAX_BODY_BYTES"),
        (
            ["serve"],
            {"TAJO_API_TOKEN": "t", "TAJO_READ_TIMEOUT_S": "0"},
            "TAJO_READ_TIMEOUT_S must be a positive",
        ),
        (["worker"], {"TAJO_CREATE_TOPICS": "maybe"}, "TAJO_CREATE_TOPICS must be true or false"),
    ],
    ids=["settings", "replay-arguments", "embedded-ingester", "read-timeout", "create-topics"],
)
def test_a_bad_setting_or_argument_is_named_with_exit_status_2(
    args: list[str], env: dict[str, str], said: str, tmp_path: Path
) -> None:
    result = _cli(*args, env={"BREVO_WEBHOOK_TOKEN": "w", "TAJO_DATA_DIR": str(tmp_path), **env})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("tajo-events: ")
    assert said in result.stderr
