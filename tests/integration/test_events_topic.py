"""The events topic the project creates: a read from a time means the time of the append, as on SQLite."""

import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from eventlog.kafka import ensure_events_topic
from eventlog.kafka_reader import KafkaLogReader
from eventlog.port import ReadStart

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
