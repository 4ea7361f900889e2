"""`tajo-events dlq` on Kafka: dead letters are records of `<events topic>.dead` and `<actions topic>.dead`.

Each topic is read from its start (it holds few records: only what failed). A retry sends the record
back where it came from, keyed as it was (an event to the events topic under its key, so to its
customer's partition; an action to the actions topic under its address), then adds a marker record
naming the entry to the dead-letter topic, so a second retry does nothing. A crash between the two
leaves the entry to retry again: the fold drops a second copy of an event as a duplicate, and the
effector carries an action id out once.
"""

import asyncio
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from domain.actions import decode_action
from domain.dead_letters import resubmission_key
from eventlog.dead_letters import RETRIED, DeadEntry, Kind, dead_topic, entry_of, header_map, retried_offset
from eventlog.kafka import KafkaEventLog, KafkaLogSettings, topic_partitions
from eventlog.port import LogRecord

READ_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class KafkaDeadLetters:
    """The dead-letter topics of a pipeline's events and actions topics (one partition each, as created)."""

    bootstrap_servers: str
    events_topic: str
    actions_topic: str

    def _source(self, kind: Kind) -> str:
        return self.events_topic if kind == "event" else self.actions_topic

    async def entries(self) -> list[DeadEntry]:
        """Every dead letter, events then actions, each oldest first (an event set aside twice, once)."""
        found: list[DeadEntry] = []
        for kind in ("event", "action"):
            entries, retried = await self._read(kind)
            seen: set[tuple[int | None, int | None]] = set()
            for entry in entries:
                if kind == "event" and entry.source_offset is not None:
                    where = (entry.source_partition, entry.source_offset)
                    if where in seen:
                        continue  # published again after a crash before its batch was committed
                    seen.add(where)
                offset = int(entry.id.partition(":")[2])
                if offset in retried:
                    entry = _with_retry(entry, retried[offset])  # noqa: PLW2901 - the same entry, stamped
                found.append(entry)
        return found

    async def entry(self, entry_id: str) -> DeadEntry | None:
        """One dead letter by its id (`event:<offset>` or `action:<offset>`), or None."""
        return next((entry for entry in await self.entries() if entry.id == entry_id), None)

    async def retry(self, entry: DeadEntry) -> bool:
        """Re-submits a dead letter not retried yet; False when it was retried already (nothing done)."""
        if entry.retried_at_ms is not None:
            return False
        if entry.kind == "event":
            log = KafkaEventLog(KafkaLogSettings(self.bootstrap_servers, self.events_topic))
            await log.start()
            try:
                await log.append([LogRecord(resubmission_key(entry.value), entry.value)])
            finally:
                await log.stop()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, enable_idempotence=True, acks="all"
        )
        await producer.start()
        try:
            if entry.kind == "action":
                key = decode_action(entry.value).address.encode()
                await producer.send_and_wait(self.actions_topic, entry.value, key=key)
            offset = entry.id.partition(":")[2]
            marker = [(RETRIED, offset.encode())]
            await producer.send_and_wait(
                dead_topic(self._source(entry.kind)), b"", key=entry.key, headers=marker
            )
        finally:
            await producer.stop()
        return True

    async def _read(self, kind: Kind) -> tuple[list[DeadEntry], dict[int, int]]:
        """A dead-letter topic's entries, and when each retried one was retried (by its offset)."""
        topic = dead_topic(self._source(kind))
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        entries: list[DeadEntry] = []
        retried: dict[int, int] = {}
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                for partition in await topic_partitions(self.bootstrap_servers, topic):
                    tp = TopicPartition(topic, partition)
                    consumer.assign([tp])
                    end = (await consumer.end_offsets([tp]))[tp]
                    consumer.seek(tp, 0)  # the earliest offset kept, when 0 is gone
                    while await consumer.position(tp) < end:
                        for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                            if record.offset >= end:
                                break
                            headers = header_map(record.headers)
                            marked = retried_offset(headers)
                            if marked is not None:
                                retried[marked] = int(record.timestamp)
                                continue
                            entries.append(
                                entry_of(
                                    kind,
                                    int(record.offset),
                                    timestamp_ms=int(record.timestamp),
                                    key=bytes(record.key or b""),
                                    value=bytes(record.value or b""),
                                    headers=headers,
                                )
                            )
        finally:
            await consumer.stop()
        return entries, retried


def _with_retry(entry: DeadEntry, at_ms: int) -> DeadEntry:
    return replace(entry, retried_at_ms=at_ms)
