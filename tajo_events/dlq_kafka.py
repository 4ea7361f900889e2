"""`tajo-events dlq` on Kafka: dead letters are records of `<events topic>.dead` and `<actions topic>.dead`.

Each topic is read from its start (it holds few records: only what failed). A retry sends the record
back where it came from, keyed as it was (an event to the events topic under its key, so to its
customer's partition; an action to the actions topic under its address), then notes the retry in
`<dead-letter topic>.retried`, so a second retry does nothing. A crash between the two leaves the
entry to retry again: the fold drops a second copy of an event as a duplicate, and the effector
carries an action id out once.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from domain.actions import decode_action
from domain.dead_letters import resubmission_key, resubmitted_copy
from eventlog.dead_letters import (
    RETRIED_CONFIG,
    DeadEntry,
    Kind,
    dead_topic,
    entry_of,
    header_map,
    read_retry_note,
    retried_topic,
    retry_note,
)
from eventlog.kafka import KafkaEventLog, KafkaLogSettings, ensure_topics, topic_partitions
from eventlog.port import LogRecord
from eventlog.sqlite import wall_clock_ms

READ_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class KafkaDeadLetters:
    """The dead-letter topics of a pipeline's events and actions topics (one partition each, as created)."""

    bootstrap_servers: str
    events_topic: str
    actions_topic: str
    replication_factor: int = 1
    create_topics: bool = True  # the `.retried` topic, on the first retry (else it is made by hand)

    def _source(self, kind: Kind) -> str:
        return self.events_topic if kind == "event" else self.actions_topic

    async def entries(self) -> list[DeadEntry]:
        """Every dead letter, events then actions, each oldest first (an event set aside twice, once)."""
        found: list[DeadEntry] = []
        for kind in ("event", "action"):
            retried = dict(
                note
                for record in await self._records(retried_topic(self._source(kind)))
                if (note := read_retry_note(record.key, record.value)) is not None
            )
            seen: set[tuple[int | None, int | None]] = set()
            for record in await self._records(dead_topic(self._source(kind))):
                entry = entry_of(
                    kind,
                    int(record.offset),
                    timestamp_ms=int(record.timestamp),
                    key=bytes(record.key or b""),
                    value=bytes(record.value or b""),
                    headers=header_map(record.headers),
                )
                if kind == "event" and entry.source_offset is not None:
                    where = (entry.source_partition, entry.source_offset)
                    if where in seen:
                        continue  # published again after a crash before its batch was committed
                    seen.add(where)
                if record.offset in retried:
                    entry = replace(entry, retried_at_ms=retried[record.offset])
                found.append(entry)
        return found

    async def entry(self, entry_id: str) -> DeadEntry | None:
        """One dead letter by its id (`event:<offset>` or `action:<offset>`), or None."""
        return next((entry for entry in await self.entries() if entry.id == entry_id), None)

    async def retry(self, entry: DeadEntry) -> bool:
        """Re-submits a dead letter not retried yet; False when it was retried already (nothing done)."""
        if entry.retried_at_ms is not None:
            return False
        notes = retried_topic(self._source(entry.kind))
        if self.create_topics:
            await ensure_topics(self.bootstrap_servers, {notes: 1}, self.replication_factor, RETRIED_CONFIG)
        if entry.kind == "event":
            log = KafkaEventLog(KafkaLogSettings(self.bootstrap_servers, self.events_topic))
            await log.start()
            try:
                await log.append([LogRecord(resubmission_key(entry.value), resubmitted_copy(entry.value))])
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
            note_key, note_value = retry_note(int(entry.id.partition(":")[2]), wall_clock_ms())
            await producer.send_and_wait(notes, note_value, key=note_key)
        finally:
            await producer.stop()
        return True

    async def _records(self, topic: str) -> Sequence[Any]:
        """Every record of a topic as it is now, in offset order per partition (none without the topic)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        records: list[Any] = []
        try:
            async with asyncio.timeout(READ_TIMEOUT_S):
                for partition in await topic_partitions(self.bootstrap_servers, topic):
                    tp = TopicPartition(topic, partition)
                    consumer.assign([tp])
                    end = (await consumer.end_offsets([tp]))[tp]
                    consumer.seek(tp, 0)  # the earliest offset kept, when 0 is gone
                    while await consumer.position(tp) < end:
                        fetched = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
                        records += [record for record in fetched if record.offset < end]
        finally:
            await consumer.stop()
        return records
