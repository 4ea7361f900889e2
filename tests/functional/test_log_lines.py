"""Every log line is JSON with the keys asked for, and none holds a secret, a token or a full email address.

The root logging is set up as `tajo-events` sets it up (at DEBUG), then `serve` (as `create_embedded_app`
wires it, with request lines on) is driven with what would leak: emails in bodies and paths, tokens and
signatures right and wrong, an effector Brevo refuses, an undecodable state, an exception carrying secrets.
"""

import io
import logging
import logging.config
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ingest.auth import SIGNATURE_HEADER, sign
from projections.store import ReadModel
from tajo_events.embedded import create_embedded_app
from tajo_events.logging_setup import configure_logging, worker_logging_config
from telemetry.logs import AccessLogger, Redactor, RepeatFilter
from tests.fakes.brevo_server import FakeBrevo
from tests.processes import eventually

SECRET = "log-lines-hmac-secret"
TOKEN = "log-lines-webhook-token"
API_TOKEN = "log-lines-api-token"
BREVO_KEY = "xkeysib-0123456789abcdef-loglines"
SECRETS = (SECRET, TOKEN, API_TOKEN, BREVO_KEY)
ENV = {
    "BREVO_WEBHOOK_SECRET": SECRET,
    "BREVO_WEBHOOK_TOKEN": TOKEN,
    "TAJO_API_TOKEN": API_TOKEN,
    "BREVO_API_KEY": BREVO_KEY,
    "TAJO_LOG_LEVEL": "DEBUG",
}
EMAIL = re.compile(r"[\w.+-]+(@|%40)[\w-]+(\.[\w-]+)+", re.IGNORECASE)
REQUIRED = {"time", "level", "logger", "pid", "message"}
REQUEST_LINE = {"request_id", "route", "method", "status", "duration_ms"}


def lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def assert_nothing_leaks(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    assert not re.search(r"(?i)bearer (?!\[redacted\])", text)
    assert not re.search(r"(?i)sha256=(?!\[redacted\])", text)
    assert not EMAIL.search(text), EMAIL.search(text)


async def test_serve_logs_json_lines_without_secrets_tokens_or_emails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    async with FakeBrevo(api_key=BREVO_KEY) as brevo:
        for name, setting in {**ENV, "BREVO_API_BASE_URL": brevo.base_url}.items():
            monkeypatch.setenv(name, setting)
        configure_logging({**ENV, "TAJO_LOG_FORMAT": "json"}, stream)
        brevo.fail_next("/transactionalSMS", 1, status=400)
        server = TestServer(create_embedded_app(tmp_path / "data", API_TOKEN))
        # served as `run_app` serves it with TAJO_ACCESS_LOG=true: a request line per request
        await server.start_server(
            access_log_class=AccessLogger, access_log=logging.getLogger("aiohttp.access")
        )
        async with TestClient(server) as client:
            await drive(client)
            # the effector dead-letters the refused help SMS and logs why
            await eventually(
                lambda: _now("giving up on action" in stream.getvalue()), lambda found: found, within=30
            )
    ReadModel().apply("Leaky.Key@Example.com", b"not a state")  # logged with its key
    log = logging.getLogger("tests.log_lines")
    log.debug("debug line about jane.doe@example.com with Authorization: Bearer %s", TOKEN)
    try:
        raise RuntimeError(f"boom for {API_TOKEN} at someone@example.org, key {BREVO_KEY}, sig sha256=abc123")
    except RuntimeError:
        log.exception("failed while handling api-key: %s", BREVO_KEY)

    found = lines(stream)
    parsed = [orjson.loads(line) for line in found]  # each line is one JSON object
    assert all(set(line) >= REQUIRED for line in parsed)
    assert {line["level"] for line in parsed} >= {"DEBUG", "INFO", "WARNING", "ERROR"}
    assert_nothing_leaks(stream.getvalue())

    requests = [line for line in parsed if line["logger"] == "aiohttp.access"]
    assert requests
    assert all(set(line) >= REQUEST_LINE for line in requests)
    traced = [line for line in parsed if line.get("request_id") == "trace-401"]
    assert {line["logger"] for line in traced} == {"ingest.app", "aiohttp.access"}  # one id, both lines
    assert all(line["route"] == "/webhooks/brevo" for line in traced)
    reads = [line for line in requests if line["route"] == "/api/customers/{address}"]
    assert {(line["status"], line["method"]) for line in reads} >= {(200, "GET"), (401, "GET")}
    read = reads[0]
    assert isinstance(read["duration_ms"], float)
    unknown = next(line for line in parsed if "kept unknown Brevo event" in line["message"])
    assert "n***@example.com" in unknown["message"]
    undecodable = next(line for line in parsed if "undecodable state" in line["message"])
    assert "L***@Example.com" in undecodable["message"]
    failed = next(line for line in parsed if line["message"].startswith("failed while handling"))
    assert "RuntimeError: boom for [redacted] at s***@example.org" in failed["exception"]


async def _now(value: bool) -> bool:
    return value


async def drive(client: TestClient[Any, Any]) -> None:
    """What would leak: emails, right and wrong tokens and signatures, bad bodies, reads by address."""
    event = {"event": "delivered", "email": "Jane.Doe@Example.com", "ts": 1640995200, "message-id": "m-1"}
    body = orjson.dumps(event)
    json_type = {"Content-Type": "application/json"}
    assert (await client.post("/webhooks/brevo", data=body, headers=signed(body))).status == 200
    headers = {**json_type, "Authorization": f"Bearer {TOKEN}"}
    assert (await client.post("/webhooks/brevo", data=body, headers=headers)).status == 200
    wrong = {**json_type, "Authorization": f"Bearer {TOKEN}-wrong", "X-Request-Id": "trace-401"}
    assert (await client.post("/webhooks/brevo", data=body, headers=wrong)).status == 401
    bad_signature = {**json_type, SIGNATURE_HEADER: "sha256=" + "0" * 64}
    assert (await client.post("/webhooks/brevo", data=body, headers=bad_signature)).status == 401
    malformed = b'{"email": "leaky@example.com", '
    assert (await client.post("/webhooks/brevo", data=malformed, headers=signed(malformed))).status == 400
    unknown = orjson.dumps({**event, "event": "notify.me@example.com", "message-id": "m-2"})
    assert (await client.post("/webhooks/brevo", data=unknown, headers=signed(unknown))).status == 200
    reply = orjson.dumps({"event": "sms_reply", "phone": "+33612340001", "text": "help", "ts": 1700000000})
    assert (await client.post("/webhooks/brevo", data=reply, headers=signed(reply))).status == 200
    api = {"Authorization": f"Bearer {API_TOKEN}"}

    async def customer() -> int:
        return (await client.get("/api/customers/jane.doe@example.com", headers=api)).status

    await eventually(customer, lambda status: status == 200, within=30)
    assert (
        await client.get("/api/customers/nobody@example.com", headers={"Authorization": "x"})
    ).status == 401
    assert (await client.get("/metrics", headers=api)).status == 200
    assert (
        await client.get("/webhooks/brevo/health", headers={"Authorization": f"Bearer {TOKEN}"})
    ).status == 200


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET.encode(), body)}


def test_text_lines_are_redacted_too() -> None:
    stream = io.StringIO()
    configure_logging({**ENV, "TAJO_LOG_FORMAT": "text"}, stream)
    logging.getLogger("tests.log_lines").warning("token %s for jane@example.com", TOKEN)
    (line,) = lines(stream)
    assert line.endswith(" WARNING tests.log_lines: token [redacted] for j***@example.com")


def test_the_faust_workers_log_json_lines_through_their_config(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(worker_logging_config(ENV))
    logging.getLogger("streams.effector").info("action for jane@example.com with Bearer %s", API_TOKEN)
    line = orjson.loads(capsys.readouterr().err.splitlines()[-1])
    assert line["message"] == "action for j***@example.com with Bearer [redacted]"
    assert line["level"] == "INFO"


def test_the_redactor_masks_what_it_is_asked_to() -> None:
    redact = Redactor(["s3cr3t-value", None, "", "abc"])  # empty and very short secrets are ignored
    assert redact("Jane.Doe@Example.com") == "J***@Example.com"
    assert redact("to jane%40example.com") == "to j***%40example.com"
    assert redact(redact("a@b.co")) == "a***@b.co"  # masking twice changes nothing
    assert redact("s3cr3t-value and abc") == "[redacted] and abc"
    assert redact("authorization: BEARER abc.def") == "authorization: BEARER [redacted]"
    assert redact("X-Brevo-Signature: sha256=DEADBEEF00") == "X-Brevo-Signature: sha256=[redacted]"
    assert redact("{'api-key': 'k-123'}") == "{'api-key': '[redacted]'}"
    assert redact("key xkeysib-abc-123 used") == "key [redacted] used"
    assert redact("event 3f2a... at 2024-05-01T12:00:00Z") == "event 3f2a... at 2024-05-01T12:00:00Z"


def test_a_chatty_librarys_repeated_line_is_let_through_once_per_window() -> None:
    now = [0.0]
    repeats = RepeatFilter(window_s=10.0, clock=lambda: now[0])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(repeats)
    chatty, ours = logging.getLogger("aiokafka.cluster.probe"), logging.getLogger("tests.log_lines.repeats")
    for logger in (chatty, ours):
        logger.addHandler(handler)
        logger.propagate = False
    try:
        for _ in range(100):  # aiokafka's metadata retry, every 100 ms
            chatty.error("Topic %s not found in cluster metadata", "t.events")
            ours.warning("same line of ours")
        chatty.error("Topic %s not found in cluster metadata", "other.events")  # another line passes
        now[0] = 10.5
        chatty.error("Topic %s not found in cluster metadata", "t.events")
    finally:
        for logger in (chatty, ours):
            logger.removeHandler(handler)
            logger.propagate = True
    found = lines(stream)
    assert found.count("tests.log_lines.repeats same line of ours") == 100  # only the prefixes are held
    assert [line for line in found if line.startswith("aiokafka")] == [
        "aiokafka.cluster.probe Topic t.events not found in cluster metadata",
        "aiokafka.cluster.probe Topic other.events not found in cluster metadata",
        "aiokafka.cluster.probe Topic t.events not found in cluster metadata (and 99 more like it held back)",
    ]
