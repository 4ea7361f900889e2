"""Feeds the read model from the engagement table's Kafka changelog, from offset zero, on every partition."""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from eventlog.kafka import topic_partitions
from projections.store import StateStore

log = logging.getLogger(__name__)


class ChangelogFeeder:
    """Tails a compacted changelog topic and applies each record to a state store."""

    def __init__(self, bootstrap_servers: str, topic: str, store: StateStore) -> None:
        """Feeds `store` from `topic`, from offset zero."""
        self._bootstrap_servers = bootstrap_servers
        self._topic = topic
        self._store = store
        self._task: asyncio.Task[None] | None = None
        self.applied = 0
        self.positions: dict[int, int] = {}  # partition -> offset of the next record to apply

    async def start(self) -> None:
        """Starts tailing in the background; the topic may not exist yet."""
        self._task = asyncio.create_task(self._run(), name=f"changelog-feeder:{self._topic}")

    async def stop(self) -> None:
        """Stops tailing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._tail()
            except (KafkaError, TimeoutError) as error:
                log.warning("changelog %s unreachable, retrying: %r", self._topic, error)
                await asyncio.sleep(1.0)

    def reached(self, ends: dict[int, int]) -> bool:
        """True once every record before `ends` (offsets per partition) has been applied."""
        return all(self.positions.get(p, 0) >= end for p, end in ends.items() if end > 0)

    async def _tail(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=5000,
        )
        await consumer.start()
        try:
            partitions = await self._partitions()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        if record.key is not None:
                            self._store.apply(record.key.decode(), record.value)
                            self.applied += 1
                        self.positions[tp.partition] = record.offset + 1
        finally:
            await consumer.stop()

    async def _partitions(self) -> list[TopicPartition]:
        while True:
            found = await topic_partitions(self._bootstrap_servers, self._topic)
            if found:
                return [TopicPartition(self._topic, p) for p in found]
            await asyncio.sleep(0.5)
