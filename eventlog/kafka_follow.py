"""Following every partition of a Kafka topic in the background, from where the follower left off.

What the projections keep in memory from a topic (the read model from the engagement changelog, the
timelines from the events topic) is fed this way: one consumer without a group, assigned every
partition once the topic exists, records handed over fetch by fetch; a broker error starts a new
consumer from the positions reached (from offset zero the first time).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from eventlog.kafka import topic_partitions

log = logging.getLogger(__name__)

Records = Sequence[ConsumerRecord]  # aiokafka is untyped here: its records are Any


class TopicFollower:
    """Hands each fetch's records of a partition to `apply(partition, records)`, until stopped."""

    def __init__(self, bootstrap_servers: str, topic: str, apply: Callable[[int, Records], None]) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._apply = apply
        self._task: asyncio.Task[None] | None = None
        self.positions: dict[int, int] = {}  # partition -> offset of the next record to hand over

    def start(self, name: str) -> None:
        """Follows the topic in a background task named `name`; the topic may not exist yet."""
        self._task = asyncio.create_task(self._run(), name=name)

    async def stop(self) -> None:
        """Stops following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def reached(self, ends: dict[int, int]) -> bool:
        """True once every record before `ends` (offsets per partition) has been handed over."""
        return all(self.positions.get(p, 0) >= end for p, end in ends.items() if end > 0)

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except (KafkaError, TimeoutError) as error:
                log.warning("topic %s unreachable, retrying: %r", self._topic, error)
                await asyncio.sleep(1.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(self._topic, p) for p in await self._partitions()]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, self.positions.get(tp.partition, 0))
            while True:
                for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                    if records:
                        self._apply(tp.partition, records)
                        self.positions[tp.partition] = records[-1].offset + 1
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[int]:
        while True:
            found = await topic_partitions(self._bootstrap_servers, self._topic)
            if found:
                return found
            await asyncio.sleep(0.5)
