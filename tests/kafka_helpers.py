"""Reading what reached a Kafka topic, for tests that check the log itself."""

import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition

from eventlog.kafka import ensure_topics, topic_partitions


async def new_topic(bootstrap: str, partitions: int = 4) -> str:
    """A fresh topic of its own for one test."""
    name = f"test-events-{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, {name: partitions})
    return name


async def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of the topic, from offset zero up to its end offsets now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        found = await topic_partitions(bootstrap, topic)
        if not found:
            raise AssertionError(f"topic {topic} does not exist")
        partitions = [TopicPartition(topic, p) for p in found]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[tuple[bytes | None, bytes | None]] = []
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, batch in batches.items():
                records.extend((r.key, r.value) for r in batch if r.offset < ends[tp])
                if batch and batch[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()
