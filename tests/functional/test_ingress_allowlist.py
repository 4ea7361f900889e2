"""The IP allowlist on the real app over TCP from 127.0.0.1: with and without a trusted proxy, a forged
X-Forwarded-For from an untrusted peer, 403 with a log line, and 429 once a refused address's tokens
run out."""

import logging
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from eventlog.sqlite import SqliteEventLog
from ingest.app import GUARD, create_app
from ingest.config import IngestSettings

TOKEN = "allowlist-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BODY = orjson.dumps(
    {"event": "delivered", "email": "jane@example.com", "message-id": "ip-1", "ts": 1640995200}
)
BREVO_HOST = "1.179.112.5"


def settings(**env: str) -> IngestSettings:
    return IngestSettings.from_env({"BREVO_WEBHOOK_TOKEN": TOKEN, **env})


async def posts(log_path: Path, config: IngestSettings, forwarded: list[str | None]) -> list[int]:
    """The webhook's status for each X-Forwarded-For value (None: no header), all from 127.0.0.1."""
    found = []
    async with TestClient(TestServer(create_app(config, SqliteEventLog(log_path)))) as client:
        for value in forwarded:
            headers = AUTH if value is None else AUTH | {"X-Forwarded-For": value}
            found.append((await client.post("/webhooks/brevo", data=BODY, headers=headers)).status)
    return found


async def test_no_allowlist_lets_every_address_in(tmp_path: Path) -> None:
    assert await posts(tmp_path / "log.db", settings(), [None, BREVO_HOST, "203.0.113.9"]) == [200, 200, 200]


async def test_without_a_trusted_proxy_the_peer_decides_and_a_forged_forwarded_for_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    assert await posts(tmp_path / "a.db", settings(TAJO_ALLOWED_IPS="brevo"), [None, BREVO_HOST]) == [
        403,
        403,
    ]
    refusals = [r.getMessage() for r in caplog.records if "TAJO_ALLOWED_IPS" in r.getMessage()]
    assert refusals == ["refused a webhook from 127.0.0.1: not in TAJO_ALLOWED_IPS"] * 2
    assert TOKEN not in caplog.text
    allowed_local = settings(TAJO_ALLOWED_IPS="brevo, 127.0.0.0/8")
    assert await posts(tmp_path / "b.db", allowed_local, [None, "203.0.113.9"]) == [200, 200]


async def test_behind_a_trusted_proxy_the_forwarded_client_decides(tmp_path: Path) -> None:
    config = settings(TAJO_ALLOWED_IPS="brevo", TAJO_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    forwarded = [
        BREVO_HOST,  # Brevo, through our proxy
        f"203.0.113.9, {BREVO_HOST}",  # whatever Brevo's side wrote on the left is not read
        f"{BREVO_HOST}, 10.1.2.3",  # through two of our proxies
        f"{BREVO_HOST}, 203.0.113.9",  # a client that wrote Brevo's address itself
        None,  # the proxy itself, with no client behind it
        "not-an-address",
    ]
    assert await posts(tmp_path / "log.db", config, forwarded) == [200, 200, 200, 403, 403, 403]


async def test_a_refused_address_is_answered_403_in_json_then_429_once_its_tokens_are_spent(
    tmp_path: Path,
) -> None:
    config = settings(TAJO_ALLOWED_IPS="brevo", TAJO_RATE_LIMIT="2/60")
    async with TestClient(TestServer(create_app(config, SqliteEventLog(tmp_path / "log.db")))) as client:
        first = await client.post("/webhooks/brevo", data=BODY, headers=AUTH)
        assert first.status == 403
        assert (await first.json())["error"] == "Forbidden"
        assert first.headers["RateLimit-Remaining"] == "1"
        assert (await client.post("/webhooks/brevo/test", headers=AUTH)).status == 403
        limited = await client.post("/webhooks/brevo", data=BODY, headers=AUTH)
        assert limited.status == 429
        assert limited.headers["Retry-After"] == "30"
        assert (await limited.json())["error"] == "Too Many Requests"
        # the health route is not the webhook: probes from anywhere reach it
        assert (await client.get("/webhooks/brevo/health", headers=AUTH)).status == 200
        assert client.app is not None
        refusals = client.app[GUARD].refusals
        assert (refusals.forbidden, refusals.limited) == (2, 1)
