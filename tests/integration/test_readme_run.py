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


def test_readme_run_command_then_try_it_snippet(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
    env |= {"TAJO_PORT": str(port), "TAJO_DATA_DIR": str(tmp_path / "data")}
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
        view = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and server.poll() is None:
            snippet = subprocess.run(
                ["bash", "-c", try_it_script()],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            answer, _, customer = snippet.stdout.partition('{"email"')  # curl prints no newlines
            if '"success":true' in answer and '"delivered":1' in customer:
                view = orjson.loads('{"email"' + customer)
                break
            time.sleep(2)
        output = log_path.read_text(errors="replace")
        assert view is not None, (
            f"the README snippet never showed the customer; server output:\n{output[-4000:]}"
        )
        assert view["email"] == "jane@example.com"
        assert view["channels"]["email"]["counts"]["delivered"] == 1
        assert "change-me" not in output  # secrets never reach the logs
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
