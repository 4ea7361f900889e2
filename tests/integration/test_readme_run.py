"""The README's run command, run exactly as written, serves a signed webhook back through the API."""

import os
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from tests.processes import free_port
from tests.readme import ROOT, run_command, try_it_script

pytestmark = pytest.mark.kafka


def _printed_try_it(output: str) -> str | None:
    """The commands the start-up banner printed under `try it:`, as a shell script."""
    _, found, rest = output.partition("  try it:\n")
    if not found:
        return None
    lines = [line[4:] for line in rest.splitlines() if line.startswith("    ")]
    return "\n".join(lines) + "\n" if len(lines) >= 4 else None


def _run_script(script: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout


def _delivered(answer: str) -> int:
    _, _, customer = answer.partition('{"email"')  # curl prints no newlines
    if not customer:
        return 0
    view = orjson.loads('{"email"' + customer)
    assert view["email"] == "jane@example.com"
    delivered: int = view["channels"]["email"]["counts"]["delivered"]
    return delivered


def test_readme_run_command_with_no_variables_then_the_printed_and_the_readme_try_it(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
    env |= {"TAJO_PORT": str(port), "TAJO_DATA_DIR": str(tmp_path / "data")}  # a fresh data directory
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["bash", "-c", run_command()],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        printed = None
        while printed is None and time.monotonic() < deadline and server.poll() is None:
            printed = _printed_try_it(log_path.read_text(errors="replace"))
            time.sleep(0.5)  # a poll of the server's output, bounded by the deadline
        assert printed is not None, f"no try-it commands printed:\n{log_path.read_text()[-4000:]}"

        # The printed commands, as printed: the post gets its 200, the view comes once folded.
        delivered = 0
        while delivered < 1 and time.monotonic() < deadline:
            answer = _run_script(printed, env)
            assert '"success":true' in answer, answer
            delivered = _delivered(answer)
        assert delivered == 1  # posted again while not yet folded: the same event, counted once

        # The README's hand-signed snippet, with the secrets the first run made: a second event.
        while delivered < 2 and time.monotonic() < deadline:
            answer = _run_script(try_it_script(), env)
            assert '"success":true' in answer, answer
            delivered = _delivered(answer)
        assert delivered == 2

        secrets_file = tmp_path / "data" / "secrets.env"
        assert secrets_file.stat().st_mode & 0o777 == 0o600
        output = log_path.read_text(errors="replace")
        for line in secrets_file.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                assert line.partition("=")[2] not in output  # secrets never reach the output
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
