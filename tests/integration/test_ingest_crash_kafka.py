"""`tajo-events ingest` on Kafka killed right after 200s of concurrent requests loses none of them.

Only the HTTP contract is relied on: a 200 means the request's events are in the topic. A request
the crash cut short may have some of its events in the topic (they go to the partitions of their
keys), so unlike on the embedded log no request is required to be whole.
"""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.kafka_helpers import read_topic
from tests.webhook_crash import Server, assert_log_holds, post_until_killed, webhook_env

ACKS_BEFORE_KILL = 400

pytestmark = pytest.mark.kafka


@pytest.fixture
def topic() -> str:
    return f"test-crash-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def ingester(kafka_bootstrap: str, topic: str, tmp_path: Path) -> AsyncIterator[Server]:
    env = webhook_env() | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TAJO_EVENTS_TOPIC": topic,
        "TAJO_ACTIONS_TOPIC": f"{topic}.actions",
        "TAJO_PARTITIONS": "4",
    }
    running = Server(["-m", "tajo_events.cli", "ingest"], env, tmp_path / "ingest.log", "Running on")
    try:
        yield await running.start()
    finally:
        running.stop()


async def test_sigkill_right_after_200s_loses_no_acknowledged_event(
    ingester: Server, kafka_bootstrap: str, topic: str
) -> None:
    load = await post_until_killed(ingester.url, ingester.kill, ACKS_BEFORE_KILL)
    ingester.stop()
    assert ingester.process is not None
    assert ingester.process.returncode == -9
    assert load.in_flight_at_kill > 0  # the crash cut requests short

    logged = [
        orjson.loads(value)["event_id"] for _, value in await read_topic(kafka_bootstrap, topic) if value
    ]
    assert_log_holds(load, logged, whole_requests=False)
