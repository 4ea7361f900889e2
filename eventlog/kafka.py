"""The Kafka adapter of the event log: an idempotent producer, acks from all in-sync replicas."""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from eventlog.port import LogHealth, LogRecord, LogUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaLogSettings:
    """Where the log lives and how long an append may wait for the broker."""

    bootstrap_servers: str
    topic: str
    append_timeout_s: float = 10.0
    linger_ms: int = 0  # batches still fill while a request is in flight; 0 keeps light traffic fast


class KafkaEventLog:
    """Appends to one Kafka topic, keyed by customer address so each customer's events stay ordered."""

    def __init__(self, settings: KafkaLogSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        try:
            await self._connect()
        except LogUnavailable as error:
            log.warning("event log not reachable at start-up, will retry on demand: %s", error)

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                async with asyncio.timeout(self._settings.append_timeout_s):
                    await producer.stop()  # flushes what is buffered
            except TimeoutError:
                log.warning("event log did not flush within %ss at shutdown", self._settings.append_timeout_s)

    async def append(self, records: Sequence[LogRecord]) -> None:
        producer = await self._connect()
        topic = self._settings.topic
        try:
            async with asyncio.timeout(self._settings.append_timeout_s):
                deliveries = [await producer.send(topic, value=r.value, key=r.key) for r in records]
                await asyncio.gather(*deliveries)
        except (KafkaError, TimeoutError) as error:
            raise LogUnavailable(f"append to {topic!r} failed: {error!r}") from error

    async def health(self) -> LogHealth:
        topic = self._settings.topic
        try:
            producer = await self._connect()
            async with asyncio.timeout(self._settings.append_timeout_s):
                cluster = await producer.client.fetch_all_metadata()  # asks a broker now, not the cache
        except (LogUnavailable, KafkaError, TimeoutError) as error:
            return LogHealth(ok=False, detail=f"kafka: {error!r}")
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            return LogHealth(ok=False, detail=f"kafka topic {topic} does not exist")
        leaderless = sorted(
            p for p in partitions if cluster.leader_for_partition(TopicPartition(topic, p)) in (None, -1)
        )
        if leaderless:
            return LogHealth(ok=False, detail=f"kafka topic {topic}: partitions {leaderless} have no leader")
        return LogHealth(ok=True, detail=f"kafka topic {topic} ({len(partitions)} partitions)")

    async def _connect(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._settings.bootstrap_servers,
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=self._settings.linger_ms,
                    request_timeout_ms=int(self._settings.append_timeout_s * 1000),
                )
                try:
                    await producer.start()
                except KafkaError as error:
                    await producer.stop()
                    raise LogUnavailable(f"kafka at {self._settings.bootstrap_servers}: {error!r}") from error
                self._producer = producer
            return self._producer


async def ensure_topics(
    bootstrap_servers: str,
    topics: dict[str, int],
    replication_factor: int = 1,
    configs: dict[str, str] | None = None,
) -> None:
    """Creates each topic with its partition count (and topic `configs`) if it does not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication_factor, topic_configs=configs or {})
            for name, partitions in topics.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process created it meanwhile
                await admin.create_topics(missing)
    finally:
        await admin.close()


# The time a record carries is the time the broker appended it, whatever the producer set: a read
# from a time (`ReadStart.at_ms`, `replay --from-time`) then means the same on Kafka as on the
# embedded log, where it is the time of the append.
EVENTS_TOPIC_CONFIG = {"message.timestamp.type": "LogAppendTime"}


async def ensure_events_topic(
    bootstrap_servers: str, topic: str, partitions: int, replication_factor: int = 1
) -> None:
    """Creates the events topic, its records stamped with the broker's append time, if it does not exist."""
    await ensure_topics(bootstrap_servers, {topic: partitions}, replication_factor, EVENTS_TOPIC_CONFIG)


async def topic_partitions(
    bootstrap_servers: str, topic: str, *, request_timeout_s: float = 30.0
) -> list[int]:
    """The partition ids of `topic` as a broker tells them now, in order; none when it does not exist.

    Asks for every topic's metadata: asking for this one by name would let a broker that auto-creates
    topics create it. A consumer cannot say: its `partitions_for_topic` answers from a cache that holds
    only the topics it subscribed to, and its `topics()` gives names without partitions.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(request_timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(request_timeout_s):
            await admin.start()
            described = await admin.describe_topics()
    finally:
        await admin.close()
    for found in described:
        if found["topic"] == topic and found["error_code"] == 0:
            return sorted(int(partition["partition"]) for partition in found["partitions"])
    return []
