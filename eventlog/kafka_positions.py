"""Where a Kafka pipeline stands: topics' first and end offsets and consumer groups' committed offsets.

One group-less consumer and one admin client, kept open between reads (a scrape every few seconds
should not cost a new pair of connections each time).
"""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Offsets = dict[int, int]


class KafkaPositions:
    """Reads offsets; every method may raise aiokafka's KafkaError when the broker cannot answer."""

    def __init__(self, bootstrap_servers: str, *, request_timeout_s: float = 5.0) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._timeout_ms = int(request_timeout_s * 1000)
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self._consumer is None or self._admin is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                enable_auto_commit=False,
                request_timeout_ms=self._timeout_ms,
            )
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap_servers, request_timeout_ms=self._timeout_ms
            )
            try:
                await consumer.start()
                await admin.start()
            except BaseException:
                await consumer.stop()
                await admin.close()
                raise
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        """The topic's partitions now.

        Every topic's metadata is asked for, as `topic_partitions` does: asking by name lets a broker
        that auto-creates topics create it.
        """
        _, admin = await self._clients()
        for found in await admin.describe_topics():
            if found["topic"] == topic and found["error_code"] == 0:
                return [TopicPartition(topic, int(p["partition"])) for p in found["partitions"]]
        return []

    async def end_offsets(self, topic: str) -> Offsets:
        """The next offset of each partition of `topic` (empty when the topic does not exist)."""
        consumer, _ = await self._clients()
        partitions = await self._partitions(topic)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def first_offsets(self, topic: str) -> Offsets:
        """The first offset still held of each partition of `topic` (retention moves it)."""
        consumer, _ = await self._clients()
        partitions = await self._partitions(topic)
        firsts = await consumer.beginning_offsets(partitions) if partitions else {}
        return {tp.partition: int(offset) for tp, offset in firsts.items()}

    async def committed(self, group: str, topic: str) -> Offsets:
        """The offsets `group` committed on `topic`, by partition (a partition it never committed: absent)."""
        _, admin = await self._clients()
        offsets = await admin.list_consumer_group_offsets(group)
        return {
            tp.partition: meta.offset
            for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0
        }

    async def close(self) -> None:
        """Closes the connections; a later read opens new ones."""
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        if consumer is not None:
            await consumer.stop()
        if admin is not None:
            await admin.close()
