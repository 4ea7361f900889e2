"""`serve` on the embedded log builds its ingester with the same guard as the standalone one, and
`/metrics` counts what the guard refused, limited and shed."""

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingest.app import GUARD
from tajo_events.embedded import create_embedded_app
from tests.functional.test_observability import samples, value

TOKEN = "serve-guard-token"
API_TOKEN = "serve-guard-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
BODY = orjson.dumps(
    {"event": "delivered", "email": "jane@example.com", "message-id": "s-1", "ts": 1640995200}
)


@pytest.fixture
def guarded_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BREVO_WEBHOOK_SECRET", "BREVO_API_KEY", "TAJO_PUBLIC_METRICS", "TAJO_TRUSTED_PROXIES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BREVO_WEBHOOK_TOKEN", TOKEN)
    monkeypatch.setenv("TAJO_ALLOWED_IPS", "brevo")
    monkeypatch.setenv("TAJO_RATE_LIMIT", "2/900")
    monkeypatch.setenv("TAJO_MAX_IN_FLIGHT", "7")


@pytest.mark.usefixtures("guarded_env")
async def test_serve_guards_its_webhook_as_the_standalone_ingester_does(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    app: web.Application = create_embedded_app(tmp_path_factory.mktemp("data"), API_TOKEN)
    assert app[GUARD].settings.max_in_flight == 7
    async with TestClient(TestServer(app)) as client:
        statuses = [(await client.post("/webhooks/brevo", data=BODY, headers=AUTH)).status for _ in range(3)]
        assert statuses == [403, 403, 429]  # 127.0.0.1 is not Brevo
        api = {"Authorization": f"Bearer {API_TOKEN}"}
        assert (await client.get("/api/campaigns", headers=api)).status == 200  # reads are not Brevo's
        response = await client.get("/metrics", headers=api)
        assert response.status == 200
        found = samples(await response.text())
    assert value(found, "tajo_ingress_refused_total", reason="forbidden") == 2
    assert value(found, "tajo_ingress_refused_total", reason="limited") == 1
    assert value(found, "tajo_ingress_refused_total", reason="shed") == 0
    assert value(found, "tajo_http_requests_total", route="/webhooks/brevo", status="403") == 2
    assert value(found, "tajo_http_requests_total", route="/webhooks/brevo", status="429") == 1
    assert value(found, "tajo_ingress_in_flight") == 0
