"""`/metrics` on each service counts what was sent; Brevo's silence shows in the health check.

Real aiohttp servers and clients; the ingester on the SQLite log in `tmp_path`, `serve` as
`create_embedded_app` wires it, the effector against a fake Brevo over HTTP.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from eventlog.sqlite import SqliteEventLog
from ingest.app import create_app
from ingest.auth import SIGNATURE_HEADER, sign
from ingest.config import IngestSettings
from projections.api import ApiSettings
from projections.api import create_app as create_projections_app
from projections.holder import ProjectionHolder
from projections.store import ReadModel
from schemas.brevo import canonicalize_all
from streams.fold_faults import FAULT_VARIABLE
from tajo_events.embedded import create_embedded_app
from telemetry.metrics import ObservabilitySettings
from tests.fakes.brevo_server import FakeBrevo
from tests.payloads import Raw, seed_email
from tests.processes import eventually

SECRET = b"observability-secret"
TOKEN = "observability-webhook-token"
API_TOKEN = "observability-api-token"
Client = TestClient[web.Request, web.Application]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", SIGNATURE_HEADER: sign(SECRET, body)}


async def scrape(client: Client, token: str = API_TOKEN) -> Samples:
    response = await client.get("/metrics", headers=bearer(token))
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(await response.text())


def ingest_app(tmp_path: Path, observe: ObservabilitySettings) -> web.Application:
    settings = IngestSettings(webhook_secret=SECRET, webhook_token=TOKEN)
    return create_app(settings, SqliteEventLog(tmp_path / "log.db"), observe=observe)


def opened(n: int) -> Raw:
    return seed_email("opened", email=f"reader{n}@example.com", **{"message-id": f"obs-{n}"})


async def test_ingester_metrics_count_the_traffic_sent(tmp_path: Path) -> None:
    async with TestClient(
        TestServer(ingest_app(tmp_path, ObservabilitySettings(api_token=API_TOKEN)))
    ) as client:
        bodies: list[object] = [opened(1), opened(2), opened(3), opened(4), [opened(5), opened(6), opened(7)]]
        bodies += [seed_email("brand_new_event", **{"message-id": f"new-{n}"}) for n in range(2)]
        for body in bodies:  # 7 opened events and 2 unknown ones, in 7 appends
            data = orjson.dumps(body)
            assert (await client.post("/webhooks/brevo", data=data, headers=signed(data))).status == 200
        bad = [b"{not json", b"[]", orjson.dumps({"event": "opened"})]  # malformed, empty, no address
        for data in bad:
            assert (await client.post("/webhooks/brevo", data=data, headers=signed(data))).status == 400
        unsigned = orjson.dumps(opened(8))
        headers = {"Content-Type": "application/json"}
        assert (await client.post("/webhooks/brevo", data=unsigned, headers=headers)).status == 401
        assert (await client.get("/webhooks/brevo/health", headers=bearer(TOKEN))).status == 200

        found = await scrape(client)

    assert value(found, "tajo_events_accepted_total", type="email.opened") == 7
    assert value(found, "tajo_events_accepted_total", type="unknown") == 2
    assert value(found, "tajo_events_unknown_total") == 2
    assert sum(v for (name, _), v in found.items() if name == "tajo_events_accepted_total") == 9
    webhooks = "/webhooks/brevo"
    assert value(found, "tajo_http_requests_total", route=webhooks, status="200") == 7
    assert value(found, "tajo_http_requests_total", route=webhooks, status="400") == 3
    assert value(found, "tajo_http_requests_total", route=webhooks, status="401") == 1
    assert value(found, "tajo_http_requests_total", route="/webhooks/brevo/health", status="200") == 1
    assert value(found, "tajo_append_seconds_count") == 7  # one append per accepted body
    assert value(found, "tajo_append_seconds_bucket", le="+Inf") == 7
    assert value(found, "tajo_append_seconds_sum") > 0
    assert value(found, "tajo_append_failures_total") == 0
    assert value(found, "tajo_last_event_timestamp_seconds") > 1.7e9


async def test_ingester_metrics_need_a_token_unless_public(tmp_path: Path) -> None:
    observe = ObservabilitySettings(api_token=API_TOKEN)
    async with TestClient(TestServer(ingest_app(tmp_path / "a", observe))) as client:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers=bearer("not-the-token"))).status == 401
        assert (await client.get("/metrics", headers=bearer(API_TOKEN))).status == 200
        assert (await client.get("/metrics", headers=bearer(TOKEN))).status == 200  # Brevo's, standalone
        found = await scrape(client)
        assert value(found, "tajo_http_requests_total", route="/metrics", status="401") == 2
    public = ObservabilitySettings(public_metrics=True)
    async with TestClient(TestServer(ingest_app(tmp_path / "b", public))) as client:
        assert (await client.get("/metrics")).status == 200


async def test_projections_metrics_count_reads_and_tell_staleness() -> None:
    clock = FakeClock()
    holder = ProjectionHolder(ReadModel())
    observe = ObservabilitySettings(clock=clock)
    app = create_projections_app(ApiSettings(API_TOKEN), holder, _NoFeeder(), observe=observe)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers=bearer(TOKEN))).status == 401  # only the API's token
        assert (await client.get("/customers/jane@example.com", headers=bearer(API_TOKEN))).status == 404
        assert (await client.get("/customers/jane@example.com")).status == 401
        assert (await client.get("/campaigns", headers=bearer(API_TOKEN))).status == 200
        clock.now += 30
        found = await scrape(client)
        assert value(found, "tajo_http_requests_total", route="/customers/{address}", status="404") == 1
        assert value(found, "tajo_http_requests_total", route="/customers/{address}", status="401") == 1
        assert value(found, "tajo_http_requests_total", route="/campaigns", status="200") == 1
        assert value(found, "tajo_projection_staleness_seconds") == 30  # nothing applied since start
        assert value(found, "tajo_projection_last_change_timestamp_seconds") == 0

        holder.apply("campaign:45", None)  # a change, as a feeder applies one
        found = await scrape(client)
        assert value(found, "tajo_projection_staleness_seconds") == 0
        assert value(found, "tajo_projection_last_change_timestamp_seconds") > 1.7e9
        clock.now += 12.5
        assert value(await scrape(client), "tajo_projection_staleness_seconds") == 12.5

    public = ObservabilitySettings(public_metrics=True)
    app = create_projections_app(ApiSettings(API_TOKEN), ProjectionHolder(), _NoFeeder(), observe=public)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 200
        document = await (await client.get("/openapi.json")).json()
        assert document["paths"]["/metrics"]["get"]["security"] == []


class _NoFeeder:
    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    for name in ("BREVO_WEBHOOK_TOKEN", "BREVO_API_KEY", "TAJO_PUBLIC_METRICS", "TAJO_SILENCE_ALERT_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BREVO_WEBHOOK_SECRET", SECRET.decode())
    monkeypatch.setenv("BREVO_WEBHOOK_TOKEN", TOKEN)

    def brevo_at(base_url: str) -> None:
        monkeypatch.setenv("BREVO_API_KEY", "xkeysib-observability-test-key")
        monkeypatch.setenv("BREVO_API_BASE_URL", base_url)

    return brevo_at


async def test_serve_metrics_fold_lag_reads_the_effector_and_dead_letters(
    tmp_path: Path, serve_env: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeBrevo(api_key="xkeysib-observability-test-key") as brevo:
        serve_env(brevo.base_url)
        monkeypatch.setenv(FAULT_VARIABLE, canonicalize_all(opened(4), datetime.now(UTC))[0].event_id)
        app = create_embedded_app(tmp_path / "data", API_TOKEN)
        async with TestClient(TestServer(app)) as client:
            assert (await client.get("/metrics")).status == 401
            assert (await client.get("/metrics", headers=bearer(TOKEN))).status == 401  # serve: the API's
            brevo.fail_next("/transactionalSMS", 1, status=400)  # the first help SMS is refused for good
            bodies: list[object] = [opened(n) for n in range(5)]
            bodies += [
                {"event": "sms_reply", "phone": f"+3361234000{n}", "text": "help", "ts": 1700000000 + n}
                for n in range(2)
            ]
            for body in bodies:
                data = orjson.dumps(body)
                assert (await client.post("/webhooks/brevo", data=data, headers=signed(data))).status == 200

            async def metrics() -> Samples:
                return await scrape(client)

            found = await eventually(
                metrics,
                lambda found: (
                    value(found, "tajo_fold_lag_records", partition="0") == 0
                    and value(found, "tajo_fold_records_total") == 7
                    and value(found, "tajo_effector_actions_total", outcome="done") == 1
                ),
                within=30,
            )
            assert value(found, "tajo_effector_actions_total", outcome="gave_up") == 1  # dead-lettered
            assert value(found, "tajo_events_dead_lettered_total") == 1  # the fold of opened(4) raised
            assert value(found, "tajo_events_accepted_total", type="email.opened") == 5
            assert value(found, "tajo_append_seconds_count") == 7
            assert value(found, "tajo_projection_version") == 0

            reader = "/api/customers/reader1@example.com"
            assert (await client.get(reader, headers=bearer(API_TOKEN))).status == 200
            found = await scrape(client)
            assert (
                value(found, "tajo_http_requests_total", route="/api/customers/{address}", status="200") == 1
            )
            assert value(found, "tajo_http_requests_total", route="/webhooks/brevo", status="200") == 7
            assert value(found, "tajo_projection_last_change_timestamp_seconds") > 1.7e9
            assert (await client.get("/api/metrics", headers=bearer(API_TOKEN))).status == 404  # one /metrics


async def health(client: Client) -> dict[str, object]:
    response = await client.get("/webhooks/brevo/health", headers=bearer(TOKEN))
    assert response.status == 200  # silent or not, the process is fine
    answer: dict[str, object] = await response.json()
    assert answer["status"] == "healthy"
    return answer


def brevo_check(answer: dict[str, object]) -> dict[str, object]:
    checks = answer["checks"]
    assert isinstance(checks, dict)
    check: dict[str, object] = checks["brevo"]
    return check


async def test_health_says_when_brevo_has_gone_silent(tmp_path: Path) -> None:
    clock = FakeClock()
    observe = ObservabilitySettings(silence_alert_s=60, clock=clock)
    async with TestClient(TestServer(ingest_app(tmp_path, observe))) as client:
        check = brevo_check(await health(client))
        assert check == {"status": "ok", "last_event_at": None, "silent_for_s": 0.0, "threshold_s": 60}
        clock.now += 60  # no event since the start, for the whole threshold
        check = brevo_check(await health(client))
        assert (check["status"], check["last_event_at"], check["silent_for_s"]) == ("silent", None, 60)

        data = orjson.dumps(opened(1))
        assert (await client.post("/webhooks/brevo", data=data, headers=signed(data))).status == 200
        check = brevo_check(await health(client))
        assert (check["status"], check["silent_for_s"]) == ("ok", 0)
        assert isinstance(check["last_event_at"], str)

        clock.now += 59.5
        assert brevo_check(await health(client))["status"] == "ok"
        clock.now += 0.5
        check = brevo_check(await health(client))
        assert (check["status"], check["silent_for_s"]) == ("silent", 60)
        found = await scrape(client, TOKEN)
        assert value(found, "tajo_brevo_silent_seconds") == 60


@pytest.mark.usefixtures("serve_env")
async def test_serve_health_turns_silent_on_the_real_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAJO_SILENCE_ALERT_S", "0.2")
    async with TestClient(TestServer(create_embedded_app(tmp_path / "data", API_TOKEN))) as client:

        async def check() -> dict[str, object]:
            return brevo_check(await health(client))

        await eventually(check, lambda found: found["status"] == "silent", within=10)
        data = orjson.dumps(opened(1))
        assert (await client.post("/webhooks/brevo", data=data, headers=signed(data))).status == 200
        found = await eventually(check, lambda found: found["status"] == "silent", within=10)
        assert isinstance(found["last_event_at"], str)
        silent_for = found["silent_for_s"]
        assert isinstance(silent_for, float)
        assert silent_for >= 0.2
