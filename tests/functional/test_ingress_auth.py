"""Every way the ingester authenticates Brevo, right and wrong credentials each, on the real app and log.

Two HMAC secrets at once (rotation), bearer tokens current and previous, HTTP Basic (Brevo's webhook
URL credentials), a static custom header, several ways together, and secrets from owner-only files.
"""

import base64
import os
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from eventlog.port import ReadStart
from eventlog.sqlite import SqliteEventLog
from ingest.app import create_app
from ingest.auth import SIGNATURE_HEADER, sign
from ingest.config import IngestConfigError, IngestSettings
from tajo_events.first_run import try_it
from tajo_events.logging_setup import log_formatter

NEW_SECRET, OLD_SECRET = b"secret-new-2026", b"secret-old-2025"
TOKEN, OLD_TOKEN = "token-new", "token-old"
BODY = orjson.dumps(
    {"event": "delivered", "email": "jane@example.com", "message-id": "auth-1", "ts": 1640995200}
)
JSON = {"Content-Type": "application/json"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def statuses(tmp_path: Path, settings: IngestSettings, attempts: list[dict[str, str]]) -> list[int]:
    """The webhook's status for each set of headers, and checks that each 200 put the body in the log."""
    log = SqliteEventLog(tmp_path / "log.db")
    found: list[int] = []
    async with TestClient(TestServer(create_app(settings, log))) as client:
        for headers in attempts:
            response = await client.post("/webhooks/brevo", data=BODY, headers=JSON | headers)
            found.append(response.status)
        records = [record async for record in log.read(ReadStart())]
    assert len(records) == found.count(200)
    return found


async def test_two_hmac_secrets_are_active_at_once_for_a_rotation(tmp_path: Path) -> None:
    settings = IngestSettings(webhook_secret=NEW_SECRET, webhook_secret_previous=OLD_SECRET)
    found = await statuses(
        tmp_path,
        settings,
        [
            {SIGNATURE_HEADER: sign(NEW_SECRET, BODY)},
            {SIGNATURE_HEADER: sign(OLD_SECRET, BODY)},
            {SIGNATURE_HEADER: sign(OLD_SECRET, BODY).removeprefix("sha256=").upper()},  # bare hex
            {SIGNATURE_HEADER: sign(b"another-secret", BODY)},
            {SIGNATURE_HEADER: sign(NEW_SECRET, BODY + b" ")},  # signed another body
            {"Authorization": "Bearer " + NEW_SECRET.decode()},  # a secret is not a token
            {},
        ],
    )
    assert found == [200, 200, 200, 401, 401, 401, 401]


async def test_bearer_tokens_current_and_previous(tmp_path: Path) -> None:
    settings = IngestSettings(webhook_token=TOKEN, webhook_token_previous=OLD_TOKEN)
    attempts = [
        {"Authorization": "Bearer token-new"},
        {"Authorization": "bearer  token-old "},
        {"Authorization": "Bearer token-older"},
        {"Authorization": "Bearer "},
        {"Authorization": "token-new"},
        {SIGNATURE_HEADER: sign(b"token-new", BODY)},
    ]
    assert await statuses(tmp_path, settings, attempts) == [200, 200, 401, 401, 401, 401]


async def test_http_basic_as_brevo_sends_the_credentials_of_the_webhook_url(tmp_path: Path) -> None:
    settings = IngestSettings(basic_credentials="brevo:pa:ss word")  # a password may hold colons, spaces
    attempts = [
        basic("brevo", "pa:ss word"),
        basic("brevo", "pa:ss wordx"),
        basic("other", "pa:ss word"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer brevo:pa:ss word"},
        {},
    ]
    assert await statuses(tmp_path, settings, attempts) == [200, 401, 401, 401, 401, 401]


async def test_a_static_custom_header(tmp_path: Path) -> None:
    settings = IngestSettings.from_env({"BREVO_WEBHOOK_HEADER": "X-Tajo-Key: k3y-value"})
    attempts = [
        {"X-Tajo-Key": "k3y-value"},
        {"x-tajo-key": "k3y-value"},  # header names have no case
        {"X-Tajo-Key": "k3y-valuE"},
        {"X-Other-Key": "k3y-value"},
        {"Authorization": "Bearer k3y-value"},
    ]
    assert await statuses(tmp_path, settings, attempts) == [200, 200, 401, 401, 401]


async def test_every_way_configured_together_each_one_works(tmp_path: Path) -> None:
    settings = IngestSettings.from_env(
        {
            "BREVO_WEBHOOK_SECRET": NEW_SECRET.decode(),
            "BREVO_WEBHOOK_TOKEN": "tok",
            "BREVO_WEBHOOK_BASIC": "u:p",
            "BREVO_WEBHOOK_HEADER": "X-Key: v",
        }
    )
    attempts = [
        {SIGNATURE_HEADER: sign(NEW_SECRET, BODY)},
        {"Authorization": "Bearer tok"},
        basic("u", "p"),
        {"X-Key": "v"},
        {SIGNATURE_HEADER: "sha256=00", "Authorization": "Bearer tok"},  # one right way is enough
        {SIGNATURE_HEADER: "sha256=00", "Authorization": "Bearer no", "X-Key": "no"},
    ]
    assert await statuses(tmp_path, settings, attempts) == [200, 200, 200, 200, 200, 401]


def test_no_way_configured_means_no_start() -> None:
    with pytest.raises(IngestConfigError, match="refusing to start an open webhook endpoint"):
        IngestSettings.from_env({"BREVO_WEBHOOK_SECRET_PREVIOUS": "", "TAJO_ALLOWED_IPS": "brevo"})
    with pytest.raises(IngestConfigError, match="user:pass"):
        IngestSettings.from_env({"BREVO_WEBHOOK_BASIC": "no-colon"})
    with pytest.raises(IngestConfigError, match="Name: value"):
        IngestSettings.from_env({"BREVO_WEBHOOK_HEADER": "X-Key:"})
    with pytest.raises(IngestConfigError, match="not an IP address"):
        IngestSettings.from_env({"BREVO_WEBHOOK_TOKEN": "t", "TAJO_ALLOWED_IPS": "brevo, nowhere"})
    with pytest.raises(IngestConfigError, match="TAJO_RATE_LIMIT"):
        IngestSettings.from_env({"BREVO_WEBHOOK_TOKEN": "t", "TAJO_RATE_LIMIT": "fast"})
    with pytest.raises(IngestConfigError, match="TAJO_MAX_IN_FLIGHT"):
        IngestSettings.from_env({"BREVO_WEBHOOK_TOKEN": "t", "TAJO_MAX_IN_FLIGHT": "0"})
    with pytest.raises(IngestConfigError, match="TAJO_REQUEST_DEADLINE_S"):
        IngestSettings.from_env({"BREVO_WEBHOOK_TOKEN": "t", "TAJO_REQUEST_DEADLINE_S": "soon"})


def secret_file(tmp_path: Path, name: str, content: bytes, mode: int = 0o600) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    os.chmod(path, mode)
    return str(path)


async def test_secrets_from_owner_only_files(tmp_path: Path) -> None:
    env = {
        "BREVO_WEBHOOK_SECRET_FILE": secret_file(tmp_path, "secret", NEW_SECRET + b"\n"),
        "BREVO_WEBHOOK_TOKEN_FILE": secret_file(tmp_path, "token", b"file-token\n", 0o400),
    }
    settings = IngestSettings.from_env(env)
    attempts = [{SIGNATURE_HEADER: sign(NEW_SECRET, BODY)}, {"Authorization": "Bearer file-token"}]
    wrong = {"Authorization": "Bearer file-token-x"}
    assert await statuses(tmp_path, settings, [*attempts, wrong]) == [200, 200, 401]
    readable = {"BREVO_WEBHOOK_TOKEN_FILE": secret_file(tmp_path, "shared", b"t", 0o640)}
    with pytest.raises(IngestConfigError, match="can be read by others than its owner"):
        IngestSettings.from_env(readable)
    with pytest.raises(IngestConfigError, match="cannot read"):
        IngestSettings.from_env({"BREVO_WEBHOOK_TOKEN_FILE": str(tmp_path / "missing")})
    with pytest.raises(IngestConfigError, match="not both"):
        IngestSettings.from_env(
            {"BREVO_WEBHOOK_TOKEN": "t", "BREVO_WEBHOOK_TOKEN_FILE": env["BREVO_WEBHOOK_TOKEN_FILE"]}
        )


def test_file_secrets_and_basic_credentials_are_redacted_from_log_lines(tmp_path: Path) -> None:
    import logging

    env = {
        "BREVO_WEBHOOK_TOKEN_FILE": secret_file(tmp_path, "token", b"file-token-value\n"),
        "BREVO_WEBHOOK_BASIC": "brevo:basic-password",
        "BREVO_WEBHOOK_HEADER": "X-Key: header-value",
    }
    text = "got file-token-value, basic-password, header-value and " + basic("brevo", "x")["Authorization"]
    line = log_formatter(env).format(logging.LogRecord("t", logging.WARNING, __file__, 1, text, None, None))
    for secret in (
        "file-token-value",
        "basic-password",
        "header-value",
        basic("brevo", "x")["Authorization"],
    ):
        assert secret not in line


@pytest.mark.parametrize(
    ("env", "option"),
    [
        ({"BREVO_WEBHOOK_BASIC": "u:p"}, '-u "$BREVO_WEBHOOK_BASIC"'),
        ({"BREVO_WEBHOOK_HEADER": "X-Key: v"}, '-H "$BREVO_WEBHOOK_HEADER"'),
        ({"BREVO_WEBHOOK_TOKEN": "t"}, '-H "Authorization: Bearer $BREVO_WEBHOOK_TOKEN"'),
        ({"BREVO_WEBHOOK_TOKEN_FILE": "{tmp}/t"}, "-H \"Authorization: Bearer $(cat '{tmp}/t')\""),
    ],
)
def test_the_first_run_curl_uses_the_configured_way(tmp_path: Path, env: dict[str, str], option: str) -> None:
    secret_file(tmp_path, "t", b"file-token")
    env = {name: value.replace("{tmp}", str(tmp_path)) for name, value in env.items()}
    assert option.replace("{tmp}", str(tmp_path)) in try_it("http://127.0.0.1:8080", env, None)


async def test_the_health_route_takes_every_header_way(tmp_path: Path) -> None:
    settings = IngestSettings(basic_credentials="u:p", custom_header=("X-Key", "v"), webhook_token=TOKEN)
    app: web.Application = create_app(settings, SqliteEventLog(tmp_path / "log.db"))
    async with TestClient(TestServer(app)) as client:
        for headers, status in [(basic("u", "p"), 200), ({"X-Key": "v"}, 200), (basic("u", "q"), 401)]:
            assert (await client.get("/webhooks/brevo/health", headers=headers)).status == status
