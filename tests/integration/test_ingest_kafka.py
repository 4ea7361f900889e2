"""The ingester against a real broker: what a 200 puts in the log, and what each error keeps out."""

from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from eventlog.kafka import KafkaEventLog, KafkaLogSettings
from ingest.app import create_app
from ingest.auth import sign
from ingest.config import IngestSettings
from schemas.event import decode_event
from schemas.event_types import EventType
from tests.kafka_helpers import new_topic, read_topic
from tests.payloads import brevo_email, brevo_sms, seed_email

SECRET = b"s3cret-for-tests"
TOKEN = "token-for-tests"
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

pytestmark = pytest.mark.kafka


def signed(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    return await new_topic(kafka_bootstrap)


def make_app(bootstrap: str, topic: str, **settings: object) -> web.Application:
    ingest = IngestSettings(webhook_secret=SECRET, webhook_token=TOKEN, **settings)  # type: ignore[arg-type]
    log = KafkaEventLog(KafkaLogSettings(bootstrap, topic, append_timeout_s=5.0))
    return create_app(ingest, log)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, kafka_bootstrap: str, topic: str) -> Client:
    return await aiohttp_client(make_app(kafka_bootstrap, topic, max_body_bytes=64 * 1024))


async def test_signed_event_is_in_the_log_when_200_comes_back(
    client: Client, kafka_bootstrap: str, topic: str
) -> None:
    body = orjson.dumps(seed_email("delivered"))
    response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
    assert response.status == 200
    answer = await response.json()
    records = await read_topic(kafka_bootstrap, topic)
    assert len(records) == 1
    key, value = records[0]
    assert value is not None
    event = decode_event(value)
    assert answer == {"success": True, "accepted": 1, "event_ids": [event.event_id]}
    assert (key, event.type, event.payload) == (
        b"jane.doe@example.com",
        EventType.EMAIL_DELIVERED,
        seed_email("delivered"),
    )


async def test_bearer_token_and_batches_are_accepted(
    client: Client, kafka_bootstrap: str, topic: str
) -> None:
    batch = [brevo_email("delivered"), brevo_email("click", link="https://x.example"), brevo_sms("delivered")]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    response = await client.post("/webhooks/brevo", data=orjson.dumps(batch), headers=headers)
    assert response.status == 200
    assert (await response.json())["accepted"] == 3
    records = await read_topic(kafka_bootstrap, topic)
    assert sorted(decode_event(v).type for _, v in records if v) == sorted(
        [EventType.EMAIL_DELIVERED, EventType.EMAIL_CLICKED, EventType.SMS_DELIVERED]
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/json"}, 401),
        ({"Content-Type": "application/json", "X-Brevo-Signature": "sha256=" + "0" * 64}, 401),
        ({"Content-Type": "application/json", "X-Brevo-Signature": "sha256=not-hex"}, 401),
        ({"Content-Type": "application/json", "Authorization": "Bearer wrong"}, 401),
        ({"Content-Type": "application/json", "Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Content-Type": "text/plain", "Authorization": f"Bearer {TOKEN}"}, 415),
        ({"Authorization": f"Bearer {TOKEN}"}, 415),
    ],
)
async def test_unauthenticated_or_non_json_requests_are_refused(
    client: Client, kafka_bootstrap: str, topic: str, headers: dict[str, str], status: int
) -> None:
    response = await client.post("/webhooks/brevo", data=orjson.dumps(seed_email("opened")), headers=headers)
    assert response.status == status
    assert (await response.json())["message"]
    assert await read_topic(kafka_bootstrap, topic) == []


async def test_signature_of_another_body_is_refused(client: Client, kafka_bootstrap: str, topic: str) -> None:
    body = orjson.dumps(seed_email("opened"))
    headers = signed(orjson.dumps(seed_email("clicked")))
    response = await client.post("/webhooks/brevo", data=body, headers=headers)
    assert response.status == 401
    assert await read_topic(kafka_bootstrap, topic) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b'"a string"', "body must be"),
        (b"[]", "no events"),
        (orjson.dumps({"email": "a@b.co"}), "missing `event`"),
        (orjson.dumps({"event": "delivered"}), "missing `email`"),
        (orjson.dumps({"event": "delivered", "email": "nope"}), "not an email address"),
        (orjson.dumps([seed_email("delivered"), {"event": "opened"}]), "event 1: missing `email`"),
    ],
)
async def test_invalid_bodies_get_400_and_nothing_is_half_written(
    client: Client, kafka_bootstrap: str, topic: str, body: bytes, message: str
) -> None:
    response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
    assert response.status == 400
    assert message in (await response.json())["message"]
    assert await read_topic(kafka_bootstrap, topic) == []


async def test_too_large_bodies_get_413(client: Client, kafka_bootstrap: str, topic: str) -> None:
    big = orjson.dumps([seed_email("delivered", subject="x" * 1000)] * 80)
    assert len(big) > 64 * 1024
    response = await client.post("/webhooks/brevo", data=big, headers=signed(big))
    assert response.status == 413

    async def chunks() -> object:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = await client.post("/webhooks/brevo", data=chunks(), headers=signed(big))
    assert streamed.status == 413
    assert "larger than" in (await streamed.json())["message"]
    assert await read_topic(kafka_bootstrap, topic) == []


async def test_test_endpoint_answers_without_touching_the_log(
    client: Client, kafka_bootstrap: str, topic: str
) -> None:
    body = orjson.dumps(seed_email("delivered"))
    response = await client.post("/webhooks/brevo/test", data=body, headers=signed(body))
    assert response.status == 200
    answer = await response.json()
    assert answer["success"] is True
    assert answer["events"][0]["type"] == "email.delivered"
    empty = await client.post("/webhooks/brevo/test", headers={"Authorization": f"Bearer {TOKEN}"})
    assert empty.status == 200
    refused = await client.post(
        "/webhooks/brevo/test", data=body, headers={"Content-Type": "application/json"}
    )
    assert refused.status == 401
    assert await read_topic(kafka_bootstrap, topic) == []


async def test_health_answers_200_with_its_checks_and_needs_auth(client: Client) -> None:
    response = await client.get("/webhooks/brevo/health", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    assert (await response.json())["checks"]["event_log"]["status"] == "ok"
    assert (await client.get("/webhooks/brevo/health")).status == 401


async def test_unreachable_log_gets_503_and_health_says_so(aiohttp_client: ClientFactory) -> None:
    app = make_app("127.0.0.1:1", "nowhere", public_health=True)
    client = await aiohttp_client(app)
    body = orjson.dumps(seed_email("delivered"))
    response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
    assert response.status == 503
    assert "retry" in (await response.json())["message"]
    health = await client.get("/webhooks/brevo/health")
    assert health.status == 503
    assert (await health.json())["checks"]["event_log"]["status"] == "unavailable"


async def test_unknown_events_are_accepted_kept_and_counted(
    client: Client, kafka_bootstrap: str, topic: str
) -> None:
    body = orjson.dumps([{"event": "brand_new_thing", "email": "a@b.co"}, {"event": "x", "whatever": 1}])
    response = await client.post("/webhooks/brevo", data=body, headers=signed(body))
    assert response.status == 200
    kept = [decode_event(v) for _, v in await read_topic(kafka_bootstrap, topic) if v]
    assert [(e.type, e.source_event) for e in kept] == [
        (EventType.UNKNOWN, "brand_new_thing"),
        (EventType.UNKNOWN, "x"),
    ]
    health = await (
        await client.get("/webhooks/brevo/health", headers={"Authorization": f"Bearer {TOKEN}"})
    ).json()
    assert health["counters"]["unknown"] == 2
    assert health["counters"]["unknown_names"] == {"brand_new_thing": 1, "x": 1}
