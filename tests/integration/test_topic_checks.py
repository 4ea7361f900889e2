"""An ingester whose events topic is missing or has another partition count refuses to append.

`tajo-events ingest` runs as a real process on the session's broker (which never auto-creates a
topic). It answers 503 at once rather than put events where the fold does not expect them, says why
in its health answer and its log, creates nothing, and takes appends again once the topic is fixed.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from eventlog.kafka import ensure_events_topic, ensure_topics, topic_partitions
from ingest.auth import sign
from samples.brevo import brevo_email
from tests.processes import eventually
from tests.webhook_crash import SECRET, WEBHOOK_TOKEN, Server, webhook_env

pytestmark = pytest.mark.kafka

PARTITIONS = 4
FAST_S = 1.0  # a refusal for a known cause needs no broker round trip beyond a metadata request

Start = Callable[..., Awaitable[Server]]


@pytest.fixture
def topic() -> str:
    return f"test-topic-check-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def start_ingester(kafka_bootstrap: str, topic: str, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[Server] = []

    async def start(**settings: str) -> Server:
        env = webhook_env() | {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TAJO_EVENTS_TOPIC": topic,
            "TAJO_ACTIONS_TOPIC": f"{topic}.actions",
            "TAJO_PARTITIONS": str(PARTITIONS),
            **settings,
        }
        server = Server(["-m", "tajo_events.cli", "ingest"], env, tmp_path / "ingest.log", "Running on")
        started.append(server)
        return await server.start()

    try:
        yield start
    finally:
        for server in started:
            server.stop()


async def post(server: Server, number: int) -> tuple[int, float]:
    """A signed webhook: its status and how long the answer took."""
    body = orjson.dumps(
        brevo_email("delivered", email="check@example.com", ts_epoch=1_700_000_000_000 + number)
    )
    headers = {"Content-Type": "application/json", "X-Brevo-Signature": sign(SECRET, body)}
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with aiohttp.ClientSession() as session, session.post(server.url, data=body, headers=headers) as r:
        await r.read()
        return r.status, loop.time() - started


async def health(server: Server) -> tuple[int, Any]:
    """The ingester's health: its status and its event_log check."""
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/health", headers=headers) as response,
    ):
        return response.status, (await response.json())["checks"]["event_log"]


async def test_a_missing_topic_is_refused_said_and_not_created_until_it_is_made(
    start_ingester: Start, kafka_bootstrap: str, topic: str
) -> None:
    server = await start_ingester(TAJO_CREATE_TOPICS="false")

    for number in range(3):
        status, seconds = await post(server, number)
        assert status == 503
        assert seconds < FAST_S, f"the refusal took {seconds:.2f}s"
    status, check = await health(server)
    assert status == 503
    assert check["status"] == "unavailable"
    assert f"kafka topic {topic} does not exist" in check["detail"]
    assert f"kafka topic {topic} does not exist" in server.text()  # the log says it too
    assert await topic_partitions(kafka_bootstrap, topic) == []  # and nothing created it

    await ensure_events_topic(kafka_bootstrap, topic, PARTITIONS)  # an operator makes it
    await eventually(lambda: post(server, 10), lambda answer: answer[0] == 200, within=30)
    assert (await health(server))[0] == 200


async def test_a_topic_with_another_partition_count_is_refused_and_said(
    start_ingester: Start, kafka_bootstrap: str, topic: str
) -> None:
    await ensure_topics(kafka_bootstrap, {topic: 2})  # made by hand with another count
    server = await start_ingester()  # creating topics, but an existing one is left as it is

    status, seconds = await post(server, 0)
    assert status == 503
    assert seconds < FAST_S, f"the refusal took {seconds:.2f}s"
    status, check = await health(server)
    assert status == 503
    expected = f"kafka topic {topic} has 2 partitions, not the {PARTITIONS} of TAJO_PARTITIONS"
    assert expected in check["detail"]
    assert expected in server.text()
    assert await topic_partitions(kafka_bootstrap, topic) == [0, 1]


async def test_a_topic_deleted_under_a_running_ingester_is_refused_and_not_recreated(
    start_ingester: Start, kafka_bootstrap: str, topic: str
) -> None:
    server = await start_ingester()  # creates the topic with its partitions
    assert await topic_partitions(kafka_bootstrap, topic) == list(range(PARTITIONS))
    assert (await post(server, 0))[0] == 200

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()

    _, check = await eventually(lambda: health(server), lambda answer: answer[0] == 503, within=30)
    assert f"kafka topic {topic} does not exist" in check["detail"]
    # The first append after the deletion may wait for its timeout; the next ones know and say it.
    await eventually(lambda: post(server, 1), lambda answer: answer[0] == 503 and answer[1] < FAST_S)
    assert f"kafka topic {topic} does not exist" in server.text()
    assert await topic_partitions(kafka_bootstrap, topic) == []
