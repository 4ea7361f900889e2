"""The Kafka adapter of the event log: an idempotent producer, acks from all in-sync replicas.

Appends are group-written, as the embedded log group-commits: the records of every request that
arrives while a write is in flight go together in the next one, as one record batch per partition
(placed by the key, as Kafka's default partitioner places it). Each caller returns once the
broker acknowledged every batch its records were in; a failed write fails every caller in it.
One `send` per record cost some 30 µs of Python per event; a batch costs that per partition.

The topic must exist, with `partitions` partitions when the settings name a count: the services
create it on purpose at start-up and the brokers never auto-create one. A missing topic or another
count (events would go to other partitions than the fold's) fails every append at once, and the
health and the log say why; nothing here asks a broker for one topic by name, which would let an
auto-creating broker make it with its default count.

An append the broker does not acknowledge within `append_timeout_s` (3 s: Brevo waits 5 s for an
answer) fails. Once a write failed the log is known to be down: while the next write (the probe)
is in flight, other appends fail at once instead of each waiting out the timeout; the first write
that succeeds again brings the log back.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from eventlog.kafka_writer import KeyValue, partition_of, send_batches
from eventlog.port import LogHealth, LogRecord, LogUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KafkaLogSettings:
    """Where the log lives and how long an append may wait for the broker."""

    bootstrap_servers: str
    topic: str
    append_timeout_s: float = 3.0
    linger_ms: int = 0  # batches still fill while a request is in flight; 0 keeps light traffic fast
    partitions: int | None = None  # the count the topic must have (TAJO_PARTITIONS); None: any


class TopicUnfit(LogUnavailable):
    """The events topic is missing or has another partition count than configured."""


@dataclass(slots=True)
class _Waiting:
    """One caller's records waiting for the next write, and the future that tells it the outcome."""

    records: Sequence[LogRecord]
    done: asyncio.Future[None]


class KafkaEventLog:
    """Appends to one Kafka topic, keyed by customer address so each customer's events stay ordered."""

    def __init__(self, settings: KafkaLogSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._pending: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self._down: str | None = None  # why the last write failed, until one succeeds

    async def start(self) -> None:
        try:
            producer = await self._connect()
            async with asyncio.timeout(self._settings.append_timeout_s):
                await self._partition_count(producer)
        except TopicUnfit as error:
            log.error("refusing appends until the topic is fixed: %s", error)
        except (LogUnavailable, KafkaError, TimeoutError) as error:
            log.warning("event log not reachable at start-up, will retry on demand: %r", error)

    async def stop(self) -> None:
        if self._writer is not None:
            await asyncio.wait([self._writer])  # lets the appends already taken finish
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                async with asyncio.timeout(self._settings.append_timeout_s):
                    await producer.stop()  # flushes what is buffered
            except TimeoutError:
                log.warning("event log did not flush within %ss at shutdown", self._settings.append_timeout_s)

    @property
    def probing(self) -> bool:
        """True while the log is known to be down and a write is finding out whether it is back."""
        return self._down is not None and self._writer is not None and not self._writer.done()

    async def append(self, records: Sequence[LogRecord]) -> None:
        if self.probing:
            raise LogUnavailable(f"the log is down ({self._down}); a write is probing it")
        producer = await self._connect()
        waiting = _Waiting(records, asyncio.get_running_loop().create_future())
        self._pending.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(producer), name="kafka-log-writer")
        try:
            async with asyncio.timeout(self._settings.append_timeout_s):
                await waiting.done  # its own future: a caller that gives up cancels only that
        except TimeoutError as error:
            topic, limit = self._settings.topic, self._settings.append_timeout_s
            raise LogUnavailable(f"append to {topic!r} not acknowledged within {limit}s") from error

    async def _write_pending(self, producer: AIOKafkaProducer) -> None:
        topic = self._settings.topic
        while self._pending:
            group, self._pending = self._pending, []
            try:
                async with asyncio.timeout(self._settings.append_timeout_s):
                    count = await self._partition_count(producer)
                    by_partition: dict[tuple[str, int], list[KeyValue]] = {}
                    for waiting in group:
                        for record in waiting.records:
                            placed = (topic, partition_of(record.key, count))
                            by_partition.setdefault(placed, []).append((record.key, record.value))
                    await asyncio.gather(*await send_batches(producer, by_partition))
            except TopicUnfit as error:
                if self._down != str(error):
                    log.error("refusing %d appends: %s", len(group), error)
                self._down = str(error)
                _settle(group, error)
                _settle(self._take_pending(), error)
                continue
            except (KafkaError, TimeoutError) as error:
                failure = LogUnavailable(f"append to {topic!r} failed: {error!r}")
                if self._down is None:
                    log.warning("write of %d appends to %s failed: %r", len(group), topic, error)
                self._down = repr(error)
                _settle(group, failure)
                _settle(self._take_pending(), failure)  # arrived while it failed: Brevo retries them
                continue
            except BaseException as error:
                _settle(group, LogUnavailable(f"append to {topic!r} failed: {error!r}"))
                _settle(self._take_pending(), LogUnavailable(f"append to {topic!r} abandoned: {error!r}"))
                raise
            if self._down is not None:
                log.warning("the log %s takes appends again", topic)
                self._down = None
            _settle(group, None)

    def _take_pending(self) -> list[_Waiting]:
        pending, self._pending = self._pending, []
        return pending

    async def health(self) -> LogHealth:
        topic = self._settings.topic
        try:
            producer = await self._connect()
            async with asyncio.timeout(self._settings.append_timeout_s):
                cluster = await producer.client.fetch_all_metadata()  # asks a broker now, not the cache
        except (LogUnavailable, KafkaError, TimeoutError) as error:
            return LogHealth(ok=False, detail=f"kafka: {error!r}")
        partitions = cluster.partitions_for_topic(topic)
        problem = self._topic_problem(partitions)
        if problem is not None or not partitions:
            return LogHealth(ok=False, detail=problem or f"kafka topic {topic} does not exist")
        leaderless = sorted(
            p for p in partitions if cluster.leader_for_partition(TopicPartition(topic, p)) in (None, -1)
        )
        if leaderless:
            return LogHealth(ok=False, detail=f"kafka topic {topic}: partitions {leaderless} have no leader")
        return LogHealth(ok=True, detail=f"kafka topic {topic} ({len(partitions)} partitions)")

    async def _partition_count(self, producer: AIOKafkaProducer) -> int:
        """The topic's partition count, once it is known to be fit; raises TopicUnfit otherwise.

        From the producer's metadata cache when that shows it fit (no round trip); else from a
        metadata request for every topic (which creates none), then the cache is brought up to date.
        """
        topic = self._settings.topic
        known: set[int] | None = producer.client.cluster.partitions_for_topic(topic)
        if known is not None and self._topic_problem(known) is None:
            return len(known)
        cluster = await producer.client.fetch_all_metadata()
        problem = self._topic_problem(cluster.partitions_for_topic(topic))
        if problem is not None:
            raise TopicUnfit(problem)
        if known is not None:
            await producer.client.force_metadata_update()  # the cache had another count
        known = await producer.partitions_for(topic)  # the topic exists: this asks for it safely
        problem = self._topic_problem(known)
        if problem is not None:
            raise TopicUnfit(problem)
        return len(known)

    def _topic_problem(self, partitions: set[int] | None) -> str | None:
        """Why the topic cannot take the events (missing, another partition count), or None."""
        topic, wanted = self._settings.topic, self._settings.partitions
        if not partitions:
            return (
                f"kafka topic {topic} does not exist: the services create it at start-up "
                f"({wanted or 'TAJO_PARTITIONS'} partitions) unless TAJO_CREATE_TOPICS=false"
            )
        if wanted is not None and len(partitions) != wanted:
            return (
                f"kafka topic {topic} has {len(partitions)} partitions, not the {wanted} of TAJO_PARTITIONS: "
                f"events would go to other partitions than the fold's; recreate the topic or set "
                f"TAJO_PARTITIONS={len(partitions)}"
            )
        return None

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


def _settle(group: Sequence[_Waiting], failure: LogUnavailable | None) -> None:
    for waiting in group:
        if waiting.done.done():
            continue
        if failure is None:
            waiting.done.set_result(None)
        else:
            waiting.done.set_exception(failure)


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
