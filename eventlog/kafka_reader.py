"""The Kafka adapter of the log's read side: every partition of one topic, up to the end offsets of now."""

import asyncio
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from eventlog.kafka import topic_partitions
from eventlog.port import LoggedRecord, LogUnavailable, ReadStart


class KafkaLogReader:
    """Reads one topic back; records of different partitions interleave, each partition in offset order."""

    def __init__(self, bootstrap_servers: str, topic: str, *, request_timeout_s: float = 30.0) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._request_timeout_s = request_timeout_s

    async def head(self) -> dict[int, int]:
        consumer = await self._start_consumer()
        try:
            partitions = await self._partitions()
            return await self._end_offsets(consumer, partitions)
        except (KafkaError, TimeoutError) as error:
            raise LogUnavailable(f"head of {self._topic!r}: {error!r}") from error
        finally:
            await consumer.stop()

    async def read(self, start: ReadStart) -> AsyncIterator[LoggedRecord]:
        async for batch in self.read_batches(start):
            for record in batch:
                yield record

    async def read_batches(self, start: ReadStart) -> AsyncIterator[list[LoggedRecord]]:
        """Each fetch's records of a partition, up to the end offsets of when the read began."""
        if start.offsets is not None and start.at_ms is not None:
            raise ValueError("a read starts at given offsets or at a time, not both")
        consumer = await self._start_consumer()
        try:
            partitions = await self._partitions()
            consumer.assign(partitions)
            ends = await self._end_offsets(consumer, partitions)
            starts = await self._start_offsets(consumer, partitions, start, ends)
            remaining: set[TopicPartition] = set()
            for tp in partitions:
                if starts[tp.partition] < ends[tp.partition]:
                    consumer.seek(tp, starts[tp.partition])
                    remaining.add(tp)
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=1000)
                for tp, batch in batches.items():
                    end = ends[tp.partition]
                    records = [
                        LoggedRecord(
                            tp.partition,
                            int(record.offset),
                            bytes(record.key or b""),
                            bytes(record.value or b""),
                            int(record.timestamp),
                        )
                        for record in batch
                        if record.offset < end
                    ]
                    if records:
                        yield records
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp.partition]:
                        remaining.discard(tp)
        except (KafkaError, TimeoutError) as error:
            raise LogUnavailable(f"read of {self._topic!r}: {error!r}") from error
        finally:
            await consumer.stop()

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # an offset already deleted by retention reads from the oldest kept
            request_timeout_ms=int(self._request_timeout_s * 1000),
        )
        try:
            await consumer.start()
        except KafkaError as error:
            await consumer.stop()
            raise LogUnavailable(f"kafka at {self._bootstrap_servers}: {error!r}") from error
        return consumer

    async def _partitions(self) -> list[TopicPartition]:
        found = await topic_partitions(
            self._bootstrap_servers, self._topic, request_timeout_s=self._request_timeout_s
        )
        if not found:
            raise LogUnavailable(f"kafka topic {self._topic} does not exist")
        return [TopicPartition(self._topic, p) for p in found]

    async def _end_offsets(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> dict[int, int]:
        async with asyncio.timeout(self._request_timeout_s):
            ends = await consumer.end_offsets(partitions)
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def _start_offsets(
        self,
        consumer: AIOKafkaConsumer,
        partitions: list[TopicPartition],
        start: ReadStart,
        ends: dict[int, int],
    ) -> dict[int, int]:
        async with asyncio.timeout(self._request_timeout_s):
            if start.at_ms is not None:
                found = await consumer.offsets_for_times(dict.fromkeys(partitions, start.at_ms))
                return {
                    tp.partition: ends[tp.partition] if at is None else int(at.offset)
                    for tp, at in found.items()
                }
            beginnings = await consumer.beginning_offsets(partitions)
            oldest = {tp.partition: int(offset) for tp, offset in beginnings.items()}
            if start.offsets is None:
                return oldest
            return {p: max(oldest[p], start.offsets.get(p, oldest[p])) for p in oldest}


async def committed_offsets(bootstrap_servers: str, group: str, topic: str) -> dict[int, int]:
    """The offsets a consumer group has committed on a topic, by partition (none: not in the map)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {
        tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0
    }
