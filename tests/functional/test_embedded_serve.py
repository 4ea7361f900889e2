"""`tajo-events serve` on the embedded log: a 200 survives SIGKILL, and the fold resumes where it stopped."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.auth import sign
from tests.payloads import brevo_email
from tests.processes import free_port

SECRET = b"embedded-secret"
TOKEN = "embedded-api-token"


class Server:
    """One `tajo-events serve` process on its own port and data directory."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.env = env or {}  # more settings for the process
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Server":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BREVO_", "TAJO_", "KAFKA_"))}
        already = self.log_path.stat().st_size if self.log_path.exists() else 0
        env |= {
            "BREVO_WEBHOOK_SECRET": SECRET.decode(),
            "TAJO_API_TOKEN": TOKEN,
            "TAJO_DATA_DIR": str(self.data_dir),
        } | self.env
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tajo_events.cli", "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if b"listening on" in self.log_path.read_bytes()[already:]:
                return self
            time.sleep(0.1)
        raise AssertionError(self.log_path.read_text())

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)

    def post(self, body: object) -> tuple[int, Any]:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, data)}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/brevo", data=data, headers=headers, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, orjson.loads(response.read())

    def customer(self, address: str) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/customers/{address}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, orjson.loads(error.read())


def wait_for(server: Server, address: str, delivered: int) -> Any:
    deadline = time.monotonic() + 60
    status, view = server.customer(address)
    while time.monotonic() < deadline:
        status, view = server.customer(address)
        if status == 200 and view["channels"]["email"]["counts"]["delivered"] == delivered:
            return view
        time.sleep(0.1)
    raise AssertionError(f"last answer {status}: {view}")


@pytest.fixture
def server(tmp_path: Path) -> Any:
    running = Server(tmp_path / "data", tmp_path / "serve.log")
    yield running
    running.stop()


def test_an_event_acknowledged_with_200_survives_sigkill(server: Server) -> None:
    server.start()
    burst = [
        brevo_email("delivered", email="kill@example.com", ts_epoch=1_700_000_000_000 + n) for n in range(30)
    ]
    for payload in burst:
        status, _ = server.post(payload)
        assert status == 200
    server.kill()  # right after the last 200, before the fold may have caught up
    server.start()
    view = wait_for(server, "kill@example.com", 30)
    assert view["channels"]["email"]["counts"]["delivered"] == 30


def test_two_instances_run_side_by_side_with_their_own_data(tmp_path: Path, server: Server) -> None:
    other = Server(tmp_path / "other-data", tmp_path / "other.log")
    server.start()
    other.start()
    try:
        server.post(brevo_email("delivered", email="one@example.com"))
        other.post(brevo_email("delivered", email="two@example.com"))
        wait_for(server, "one@example.com", 1)
        wait_for(other, "two@example.com", 1)
        assert server.customer("two@example.com")[0] == 404
        assert other.customer("one@example.com")[0] == 404
    finally:
        other.stop()
