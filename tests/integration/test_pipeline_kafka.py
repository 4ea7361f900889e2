"""End to end on a real broker: signed webhooks in, a Faust worker folds them, the API shows them."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_topics
from ingest.app import create_app as create_ingest_app
from ingest.auth import sign
from ingest.config import IngestSettings
from projections.api import ApiSettings
from projections.api import create_app as create_projections_app
from projections.changelog import ChangelogFeeder
from projections.store import MemoryStateStore
from tests.fakes.brevo_server import FakeBrevo
from tests.payloads import brevo_email, brevo_sms, seed_email
from tests.processes import ChildProcess, eventually

T = TypeVar("T")
SECRET = b"pipeline-secret"
API_TOKEN = "api-token-for-tests"
PARTITIONS = 4
Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[[web.Application], Awaitable[Client]]

pytestmark = pytest.mark.kafka


@dataclass
class Pipeline:
    """Ingester and projections API in this process, Faust workers as child processes."""

    bootstrap: str
    tmp_path: Path
    ingest: Client
    api: Client
    app_id: str
    topic: str
    workers: list[ChildProcess] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)

    def start_worker(self) -> ChildProcess:
        env = self.worker_env | {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TAJO_APP_ID": self.app_id,
            "TAJO_EVENTS_TOPIC": self.topic,
            "TAJO_ACTIONS_TOPIC": self.actions_topic,
            "TAJO_PARTITIONS": str(PARTITIONS),
            "TAJO_DATA_DIR": str(self.tmp_path / "data"),
            "TAJO_SESSION_TIMEOUT_S": "6",
        }
        log_path = self.tmp_path / f"worker-{len(self.workers)}.log"
        worker = ChildProcess(["worker"], env, log_path).start()
        self.workers.append(worker)
        return worker

    async def post(self, body: object) -> list[str]:
        data = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, data)}
        response = await self.ingest.post("/webhooks/brevo", data=data, headers=headers)
        assert response.status == 200, await response.text()
        ids: list[str] = (await response.json())["event_ids"]
        return ids

    async def customer(self, address: str) -> tuple[int, Any]:
        response = await self.api.get(
            f"/customers/{address}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        return response.status, await response.json()

    @property
    def actions_topic(self) -> str:
        return f"{self.app_id}.actions"

    async def lag(self) -> int:
        """Records not yet committed by the worker group: of the events topic, and of the actions topic
        when the worker runs an effector."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.app_id)
            topics = [self.topic, self.actions_topic] if "BREVO_API_KEY" in self.worker_env else [self.topic]
            partitions = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(partitions)
            return sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in partitions)
        finally:
            await consumer.stop()
            await admin.close()


@pytest.fixture
async def pipeline(
    aiohttp_client: ClientFactory, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    app_id = f"test-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}.events"
    await ensure_topics(kafka_bootstrap, {topic: PARTITIONS, f"{app_id}.actions": PARTITIONS})
    ingest = create_ingest_app(
        IngestSettings(webhook_secret=SECRET), KafkaEventLog(KafkaLogSettings(kafka_bootstrap, topic))
    )
    store = MemoryStateStore()
    feeder = ChangelogFeeder(kafka_bootstrap, f"{app_id}-engagement-changelog", store)
    api = create_projections_app(ApiSettings(API_TOKEN), store, feeder)
    running = Pipeline(
        kafka_bootstrap, tmp_path, await aiohttp_client(ingest), await aiohttp_client(api), app_id, topic
    )
    try:
        yield running
    finally:
        for worker in running.workers:
            worker.stop()


@pytest.fixture
def worker_logs_on_failure(pipeline: Pipeline, request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for worker in pipeline.workers:
            print(worker.output()[-5000:])


def counts(view: Any) -> tuple[int, int, int, int]:
    email = view["channels"]["email"]["counts"]
    return email["delivered"], email["opened"], email["unique_opened"], email["clicked"]


async def test_webhooks_of_both_dialects_are_folded_and_served(pipeline: Pipeline) -> None:
    pipeline.start_worker()
    alice = "Alice@Example.com"
    await pipeline.post(seed_email("delivered", email=alice))
    await pipeline.post(seed_email("opened", email=alice, ts=1640995300))
    clicked = seed_email("clicked", email=alice, ts=1640995400, link="https://tajo.example/rewards")
    first = await pipeline.post(clicked)
    assert await pipeline.post(clicked) == first  # Brevo sending the same event twice
    await pipeline.post(
        [
            brevo_email("delivered", email="bob@example.com"),
            brevo_email("unique_opened", email="bob@example.com", ts_epoch=1685543828000),
            brevo_email("click", email="bob@example.com", ts_epoch=1685543829000, link="https://x.example"),
        ]
    )

    _, view = await eventually(
        lambda: pipeline.customer("alice@example.com"), lambda r: r[0] == 200 and counts(r[1]) == (1, 1, 0, 1)
    )
    assert view["channels"]["email"]["last_seen"]["clicked_at"] == "2022-01-01T00:03:20Z"
    assert view["channels"]["email"]["open_rate"] == 1.0
    assert view["engagement_score"] > 0
    await eventually(
        lambda: pipeline.customer("bob@example.com"), lambda r: r[0] == 200 and counts(r[1]) == (1, 0, 1, 1)
    )
    await eventually(pipeline.lag, lambda lag: lag == 0)
    assert counts((await pipeline.customer("alice@example.com"))[1]) == (1, 1, 0, 1)

    assert (await pipeline.customer("nobody@example.com"))[0] == 404
    unauthorized = await pipeline.api.get("/customers/alice@example.com")
    assert unauthorized.status == 401


async def test_a_killed_worker_is_replaced_without_losing_or_double_counting(pipeline: Pipeline) -> None:
    first_worker = pipeline.start_worker()
    carol = "carol@example.com"
    burst = [brevo_email("delivered", email=carol, ts_epoch=1685543800000 + n) for n in range(40)]
    burst += [brevo_email("opened", email=carol, ts_epoch=1685543900000 + n) for n in range(40)]
    await pipeline.post(burst[:20])
    await eventually(lambda: pipeline.customer(carol), lambda r: r[0] == 200)
    for start in range(20, len(burst), 10):
        await pipeline.post(burst[start : start + 10])
    first_worker.kill()
    await pipeline.post(burst[:30])  # duplicates, as Brevo retries would send them
    await pipeline.post([brevo_email("click", email=carol, ts_epoch=1685544000000)])

    pipeline.start_worker()
    await eventually(
        lambda: pipeline.customer(carol), lambda r: r[0] == 200 and counts(r[1]) == (40, 40, 0, 1), within=120
    )
    await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
    _, view = await pipeline.customer(carol)
    assert counts(view) == (40, 40, 0, 1)


async def test_one_help_sms_per_help_reply_despite_redelivery_and_a_brevo_failure(pipeline: Pipeline) -> None:
    async with FakeBrevo(api_key="brevo-key-for-tests") as brevo:
        pipeline.worker_env = {"BREVO_API_KEY": "brevo-key-for-tests", "BREVO_API_BASE_URL": brevo.base_url}
        brevo.fail_next("/transactionalSMS", 1, status=500)
        pipeline.start_worker()
        help_reply = {"event": "sms_reply", "phone": "+33612340001", "text": " help ", "ts": 1700000000}
        await pipeline.post(help_reply)
        await pipeline.post(help_reply)  # Brevo delivering the same reply twice
        await pipeline.post(brevo_sms("reply", to="33612340002", text="STOP"))
        await eventually(lambda: _settled(brevo.sms_sent), lambda sent: len(sent) >= 1, within=120)
        await eventually(pipeline.lag, lambda lag: lag == 0, within=120)
        await eventually(lambda: _settled(brevo.blacklisted), lambda ids: len(ids) >= 1, within=60)
        assert [body["recipient"] for body in brevo.sms_sent] == ["33612340001"]
        assert len(brevo.requests_to("/transactionalSMS")) == 2  # the failed attempt, then the retry
        assert brevo.blacklisted == ["+33612340002"]


async def _settled(items: list[T]) -> list[T]:
    return list(items)
