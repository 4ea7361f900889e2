"""`tajo-events kafka` keeps its broker's data: a crash loses no topic, partition, record or offset.

The command runs as a real process on a free port with a data folder of its own. Its Java process is
killed with SIGKILL; the command is started again on the same folder and port, and the broker has
every topic with its partitions, every record and the committed offsets. The broker creates no topic
that a client merely names: an append to a missing topic fails, as the ingester's would.
"""

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_topics, topic_partitions
from eventlog.port import LogRecord, LogUnavailable
from tajo_events.kafka_local import KafkaLocalError, _checked_java, ensure_jars
from tests.broker_command import Broker
from tests.kafka_helpers import read_topic
from tests.processes import command_line, eventually

pytestmark = pytest.mark.kafka

PARTITIONS = 4
RECORDS = 200
GROUP = "kept-offsets"


@pytest.fixture(scope="module", autouse=True)
def broker_jars() -> None:
    """Java and the broker jars, as the command needs them (fetched once, as `make kafka` would)."""
    try:
        _checked_java()
        ensure_jars()
    except KafkaLocalError as error:
        pytest.skip(f"the local broker cannot run here: {error}")


@pytest.fixture
def command(tmp_path: Path) -> Iterator[Broker]:
    broker = Broker(tmp_path / "kafka", tmp_path / "command.log")
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.asynccontextmanager
async def consumer_of(bootstrap: str, partitions: list[TopicPartition]) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of the group, given the partitions (no subscription: commits need no rebalance)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP, enable_auto_commit=False)
    await consumer.start()
    consumer.assign(partitions)
    try:
        yield consumer
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    records = [(f"customer-{n % 37}".encode(), f"record-{n}".encode()) for n in range(RECORDS)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()
    return records


async def committed(bootstrap: str, partitions: list[TopicPartition]) -> dict[int, int | None] | str:
    try:
        async with consumer_of(bootstrap, partitions) as consumer:
            return {tp.partition: await consumer.committed(tp) for tp in partitions}
    except KafkaError as error:  # the restarted broker may not lead the group's partition yet
        return repr(error)


async def every_record(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]] | str:
    try:
        return await read_topic(bootstrap, topic)
    except (KafkaError, AssertionError) as error:  # the restarted broker may not lead every partition yet
        return repr(error)


async def test_a_broker_killed_and_started_again_has_every_topic_record_and_offset(
    command: Broker, tmp_path: Path
) -> None:
    bootstrap = await command.start()
    topic = f"kept-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, {topic: PARTITIONS})
    sent = await produce(bootstrap, topic)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    async with consumer_of(bootstrap, partitions) as consumer:
        await consumer.commit({tp: tp.partition + 1 for tp in partitions})
    first_pid = command.java_pid

    assert await command.kill() != 0
    assert command_line(first_pid) == []  # the broker is gone (and reaped)
    assert (tmp_path / "kafka" / "data" / "meta.properties").is_file()  # and its data is not

    assert await command.start() == bootstrap
    assert command.java_pid != first_pid
    assert await topic_partitions(bootstrap, topic) == list(range(PARTITIONS))
    found = await eventually(lambda: every_record(bootstrap, topic), lambda got: not isinstance(got, str))
    assert sorted(found) == sorted(sent)
    offsets = await eventually(lambda: committed(bootstrap, partitions), lambda got: not isinstance(got, str))
    assert offsets == {p: p + 1 for p in range(PARTITIONS)}


async def test_an_append_to_a_missing_topic_fails_and_creates_nothing(command: Broker) -> None:
    bootstrap = await command.start()
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    log = KafkaEventLog(KafkaLogSettings(bootstrap, missing, append_timeout_s=3.0))
    await log.start()
    try:
        with pytest.raises(LogUnavailable):
            await log.append([LogRecord(b"jane@example.com", b"{}")])
    finally:
        await log.stop()
    assert await topic_partitions(bootstrap, missing) == []
