"""The events topic the project creates: a read from a time means the time of the append, as on SQLite.

A read of a topic that does not exist fails, and leaves it not existing (on a broker that auto-creates
topics a client asks for by name too; the local broker does not).
"""

import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from eventlog.kafka import ensure_events_topic, topic_partitions
from eventlog.kafka_reader import KafkaLogReader
from eventlog.port import LogUnavailable, ReadStart

pytestmark = pytest.mark.kafka


async def test_records_carry_the_time_the_broker_appended_them(kafka_bootstrap: str) -> None:
    topic = f"events-time-{uuid.uuid4().hex[:8]}"
    await ensure_events_topic(kafka_bootstrap, topic, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    before_ms = time.time_ns() // 1_000_000
    try:
        await producer.send_and_wait(topic, b"old", key=b"k", timestamp_ms=1_000)  # a producer's own time
    finally:
        await producer.stop()

    reader = KafkaLogReader(kafka_bootstrap, topic)
    read = [record async for record in reader.read(ReadStart())]
    assert [record.value for record in read] == [b"old"]
    assert read[0].appended_at_ms >= before_ms - 5_000  # the broker's clock, not the 1970 the producer set
    assert [r.value async for r in reader.read(ReadStart(at_ms=before_ms - 5_000))] == [b"old"]


async def test_a_read_of_a_missing_topic_fails_and_creates_nothing(kafka_bootstrap: str) -> None:
    topic = f"events-missing-{uuid.uuid4().hex[:8]}"
    reader = KafkaLogReader(kafka_bootstrap, topic, request_timeout_s=10.0)
    with pytest.raises(LogUnavailable, match="does not exist"):
        await reader.head()
    with pytest.raises(LogUnavailable, match="does not exist"):
        [record async for record in reader.read(ReadStart())]
    assert await topic_partitions(kafka_bootstrap, topic) == []
