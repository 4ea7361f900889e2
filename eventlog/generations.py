"""Generations of the Kafka fold: a replay builds a new one beside the live one, then makes it live.

Generation `g` folds under its own Faust app id, so it has its own consumer group and its own
engagement table changelog: the base app id (`TAJO_APP_ID`) for generation 0, `<base>-g<g>` after.
A one-partition compacted control topic, `<base>.generations`, says which generation is live; the
worker supervisor runs the live generation's fold and the projections service serves it. The
effector has an app id of its own, the same in every generation, so its record of carried-out
actions survives a switch.
"""

import contextlib
from collections.abc import AsyncGenerator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from eventlog.kafka import ensure_topics

ENGAGEMENT_TABLE = "engagement"
SEEN_TABLE = "seen"  # each key's recent event ids, and each partition's tracking record
LIVE_KEY = b"live"


def fold_app_id(base: str, generation: int) -> str:
    """The Faust app id (consumer group, changelog prefix) of a generation's fold."""
    return base if generation == 0 else f"{base}-g{generation}"


def changelog_topic(base: str, generation: int) -> str:
    """The engagement table's changelog topic of a generation."""
    return f"{fold_app_id(base, generation)}-{ENGAGEMENT_TABLE}-changelog"


def seen_changelog_topic(base: str, generation: int) -> str:
    """The changelog topic of a generation's table of recent event ids and positions."""
    return f"{fold_app_id(base, generation)}-{SEEN_TABLE}-changelog"


def effects_app_id(base: str) -> str:
    """The Faust app id of the effector, the same in every generation."""
    return f"{base}-effects"


def control_topic(base: str) -> str:
    """The compacted topic that says which generation is live."""
    return f"{base}.generations"


class GenerationControl:
    """Reads, follows and sets the live generation in the control topic."""

    def __init__(self, bootstrap_servers: str, base: str, replication_factor: int = 1) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._base = base
        self._topic = control_topic(base)
        self._replication_factor = replication_factor

    async def ensure(self) -> None:
        """Creates the control topic (one partition, compacted) if it does not exist."""
        await ensure_topics(
            self._bootstrap_servers, {self._topic: 1}, self._replication_factor, {"cleanup.policy": "compact"}
        )

    async def live(self) -> int:
        """The live generation now (0 when none was ever set).

        The generator is closed on the way out (its consumer stopped) rather than left for the
        garbage collector.
        """
        async with contextlib.aclosing(self.follow()) as generations:
            async for generation in generations:
                return generation
        raise AssertionError("follow() always yields")  # pragma: no cover

    async def set_live(self, generation: int) -> None:
        """Makes a generation live (acknowledged by every in-sync replica)."""
        await self.ensure()
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap_servers, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(self._topic, str(generation).encode(), key=LIVE_KEY, partition=0)
        finally:
            await producer.stop()

    async def follow(self, poll_ms: int = 1000) -> AsyncGenerator[int, None]:
        """Yields the live generation once the topic is read to its end, then each time it changes."""
        await self.ensure()
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap_servers, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition(self._topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            live: int | None = None
            current = 0
            while True:
                batches = await consumer.getmany(tp, timeout_ms=poll_ms)
                for record in batches.get(tp, []):
                    if record.key == LIVE_KEY and record.value is not None:
                        current = int(record.value)
                if await consumer.position(tp) >= end and current != live:
                    live = current
                    yield current
        finally:
            await consumer.stop()
