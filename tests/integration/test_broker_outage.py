"""A broker that dies: the ingester answers 503 (Brevo retries), health says so, and the retry lands once."""

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from eventlog.kafka import KafkaEventLog, KafkaLogSettings
from ingest.app import create_app
from ingest.auth import sign
from ingest.config import IngestSettings
from schemas.event import decode_event
from tajo_events.kafka_local import LocalKafka
from tests.fold_helpers import fold_log
from tests.kafka_helpers import new_topic, read_topic
from tests.payloads import brevo_email
from tests.processes import eventually

SECRET = b"outage-secret"
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

pytestmark = pytest.mark.kafka
APPEND_TIMEOUT_S = 3.0
DEADLINE_SLACK_S = 1.5


async def _probing(event_log: KafkaEventLog) -> bool:
    return event_log.probing


@pytest.fixture
def own_broker() -> Iterator[LocalKafka]:
    broker = LocalKafka(num_partitions=4).start()
    try:
        yield broker
    finally:
        broker.stop()


async def test_dead_broker_gets_503_and_the_retry_counts_once(
    aiohttp_client: ClientFactory, own_broker: LocalKafka
) -> None:
    bootstrap = own_broker.bootstrap_servers
    topic = await new_topic(bootstrap)
    settings = IngestSettings(webhook_secret=SECRET, public_health=True)
    event_log = KafkaEventLog(KafkaLogSettings(bootstrap, topic, APPEND_TIMEOUT_S))
    client = await aiohttp_client(create_app(settings, event_log))

    async def post(payload: object) -> int:
        body = orjson.dumps(payload)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}
        response = await client.post("/webhooks/brevo", data=body, headers=headers)
        return response.status

    assert await post(brevo_email("delivered", ts_epoch=1)) == 200
    own_broker.kill()
    during_outage = brevo_email("delivered", ts_epoch=2)
    async with asyncio.timeout(APPEND_TIMEOUT_S + DEADLINE_SLACK_S):  # Brevo gives up after 5 s
        assert await post(during_outage) == 503

    # The log is known to be down: the next append probes it, waiting out its timeout, and every
    # append meanwhile gets its 503 at once, while the probe is still waiting.
    probe = asyncio.create_task(post(brevo_email("delivered", ts_epoch=3)))
    await eventually(lambda: _probing(event_log), lambda probing: probing, within=APPEND_TIMEOUT_S)
    assert await post(brevo_email("delivered", ts_epoch=4)) == 503
    assert not probe.done()
    assert await probe == 503
    assert (await client.get("/webhooks/brevo/health")).status == 503

    own_broker.start()
    await eventually(lambda: post(during_outage), lambda status: status == 200, within=120)
    assert (await client.get("/webhooks/brevo/health")).status == 200

    events = [decode_event(value) for _, value in await read_topic(bootstrap, topic) if value]
    landed = {e.payload["ts_epoch"] for e in events}
    assert {1, 2} <= landed <= {1, 2, 3}  # the probe (3) may land after its 503; 4 never left
    state, _ = fold_log("jane.doe@example.com", events)
    assert state.email_channel.delivered == len(landed)  # a 503'd attempt that landed is folded once
