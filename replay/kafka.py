"""Replay and verify on Kafka.

A replay folds the events topic into a new generation's table, then makes it live: it folds with the
same batch core the Faust worker runs, writes each key's final state to the new generation's
changelog (in the partition of the key's events, where Faust keeps it), publishes the actions of the
events the live fold has not committed yet (the effector carries each action id out once), commits
the new generation's consumer offsets at the point the fold reached, and switches the control topic.
The supervisor then runs the new generation's fold, which recovers its table from that changelog and
goes on from those offsets; the projections service swaps to it once it has caught up. The previous
generation's changelog is kept until the next replay, which deletes it.

`verify_kafka` compares a rebuild of the events topic with the live table read from its changelog.
"""

import asyncio
import contextlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from domain.actions import Action, encode_action
from domain.batch import BatchFold, encode_position, position_key
from domain.dead_letters import DeadLetter
from domain.fold import HANDLERS, Handler
from eventlog.dead_letters import dead_topic, event_headers
from eventlog.generations import GenerationControl, changelog_topic, fold_app_id, seen_changelog_topic
from eventlog.kafka_reader import KafkaLogReader, committed_offsets
from eventlog.port import ReadStart
from eventlog.sqlite import wall_clock_ms
from projections.store import ReadModel
from replay.core import Progress, count_records, rebuild, verify
from schemas.event_types import EventType

DELETE_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class KafkaReplaySettings:
    """Where the pipeline lives on Kafka: the broker, the base app id and the topics."""

    bootstrap_servers: str
    app_id: str
    events_topic: str
    actions_topic: str
    partitions: int
    replication_factor: int
    handlers: Mapping[EventType, Handler] = field(default_factory=lambda: HANDLERS)  # the fold's


@dataclass
class _Build:
    """States of the generation being built, where each lives, and what is left to act on."""

    acted_up_to: dict[int, int]  # the live fold's committed offsets: events before them were acted on
    handlers: Mapping[EventType, Handler]
    states: dict[str, bytes] = field(default_factory=dict)
    seen: dict[str, bytes] = field(default_factory=dict)
    partition_of: dict[str, int] = field(default_factory=dict)
    tail_actions: list[Action] = field(default_factory=list)
    tail_dead: list[DeadLetter] = field(default_factory=list)  # set aside where the live fold was not yet
    positions: dict[int, int] = field(default_factory=dict)

    async def fold(self, reader: KafkaLogReader, start: ReadStart, progress: Progress | None) -> None:
        head = await reader.head()
        folder = BatchFold(self.states.get, self.seen.get, handlers=self.handlers)
        async for fetched in reader.read_batches(start):
            records = [record for record in fetched if record.offset < head.get(record.partition, 0)]
            folder.add_all(records)
            if progress is not None:
                progress.advance(len(records))
        batch = folder.take()
        self.states.update(batch.states)
        self.seen.update(batch.seen)
        self.partition_of.update(batch.partitions)
        self.tail_actions.extend(
            placed.action
            for placed in batch.actions
            if placed.offset >= self.acted_up_to.get(placed.partition, 0)
        )
        self.tail_dead.extend(
            letter for letter in batch.dead if letter.offset >= self.acted_up_to.get(letter.partition, 0)
        )
        self.positions = head


async def replay_kafka(
    pipeline: KafkaReplaySettings, start: ReadStart, progress: Progress | None = None
) -> int:
    """Builds generation live+1 from `start` and makes it live; returns it."""
    bootstrap = pipeline.bootstrap_servers
    base = pipeline.app_id
    control = GenerationControl(bootstrap, base, pipeline.replication_factor)
    live = await control.live()
    new = live + 1
    await _drop_topics(
        bootstrap,
        [topic(base, g) for g in [*range(live), new] for topic in (changelog_topic, seen_changelog_topic)],
    )
    for topic in (changelog_topic(base, new), seen_changelog_topic(base, new)):
        await _create_changelog(bootstrap, topic, pipeline.partitions, pipeline.replication_factor)

    events = KafkaLogReader(bootstrap, pipeline.events_topic)
    if progress is not None:
        progress.total = await count_records(events, start)
    build = _Build(
        acted_up_to=await committed_offsets(bootstrap, fold_app_id(base, live), pipeline.events_topic),
        handlers=pipeline.handlers,
    )
    await build.fold(events, start, progress)
    await build.fold(events, ReadStart(offsets=dict(build.positions)), progress)  # what came meanwhile

    await _publish(bootstrap, base, new, pipeline, build)
    await _commit(bootstrap, fold_app_id(base, new), pipeline.events_topic, build.positions)
    await control.set_live(new)
    if progress is not None:
        progress.finish()
    sys.stdout.write(
        f"replay: generation {new} is live ({len(build.states)} states, "
        f"{len(build.tail_actions)} actions queued); the workers switch to it now\n"
    )
    return new


async def _drop_topics(bootstrap: str, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in topics if t in existing]
        if doomed:
            with contextlib.suppress(UnknownTopicOrPartitionError):
                await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def _create_changelog(bootstrap: str, topic: str, partitions: int, replication_factor: int) -> None:
    """Creates the compacted changelog; a topic of the same name still being deleted is waited for."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        config = {"cleanup.policy": "compact"}
        topic_spec = NewTopic(topic, partitions, replication_factor, topic_configs=config)
        async with asyncio.timeout(DELETE_WAIT_S):
            while True:
                try:
                    await admin.create_topics([topic_spec])
                    return
                except TopicAlreadyExistsError:
                    await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _publish(
    bootstrap: str, base: str, generation: int, pipeline: KafkaReplaySettings, build: _Build
) -> None:
    changelog, seen = changelog_topic(base, generation), seen_changelog_topic(base, generation)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for key in sorted(build.states):
            partition = build.partition_of[key]
            await producer.send(changelog, build.states[key], key=key.encode(), partition=partition)
            if key in build.seen:
                await producer.send(seen, build.seen[key], key=key.encode(), partition=partition)
        for partition, offset in sorted(build.positions.items()):
            await producer.send(
                seen, encode_position(offset), key=position_key(partition), partition=partition
            )
        for action in build.tail_actions:
            await producer.send(pipeline.actions_topic, encode_action(action), key=action.address.encode())
        now = wall_clock_ms()
        for letter in build.tail_dead:
            headers = event_headers(letter, pipeline.events_topic, now)
            await producer.send(
                dead_topic(pipeline.events_topic),
                letter.value,
                key=(letter.address or "").encode(),
                headers=headers,
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, topic: str, positions: dict[int, int]) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(positions)]
        consumer.assign(partitions)
        await consumer.commit({tp: positions[tp.partition] for tp in partitions})
    finally:
        await consumer.stop()


async def verify_kafka(pipeline: KafkaReplaySettings, settle_s: float) -> int:
    """Compares a rebuild of the events topic with the live table; waits up to `settle_s` for equality.

    Returns the exit code: 0 when equal, 1 when they still differ.
    """
    bootstrap = pipeline.bootstrap_servers
    events = KafkaLogReader(bootstrap, pipeline.events_topic)
    live = await GenerationControl(bootstrap, pipeline.app_id, pipeline.replication_factor).live()
    changelog = KafkaLogReader(bootstrap, changelog_topic(pipeline.app_id, live))
    progress = Progress(total=sum((await events.head()).values()))
    rebuilt = await rebuild(events, ReadStart(), progress, handlers=pipeline.handlers)
    deadline = asyncio.get_running_loop().time() + settle_s
    while True:
        verdict = verify(await _table(changelog), rebuilt)
        if verdict.equal or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(1.0)  # the workers may still be folding the last events
    verdict.report(sys.stdout)
    return 0 if verdict.equal else 1


async def _table(changelog: KafkaLogReader) -> ReadModel:
    latest: dict[str, bytes] = {}
    async for record in changelog.read(ReadStart()):
        latest[record.key.decode()] = record.value
    return ReadModel.of(sorted(latest.items()))
