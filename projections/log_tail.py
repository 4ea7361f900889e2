"""The projections folded straight from the event log: customers' timelines and the log's activity.

Both are pure functions of the log's records, kept in memory and rebuilt from the start of the log
each time the service starts (the log is the source of truth; a replay does not change the log, so
it leaves them as they are). On the embedded log the tail reads the SQLite log; on Kafka it reads the
events topic from offset zero on every partition, as the read model reads the changelog.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

import orjson

from domain.events import UndecodableEvent, decode_fold_event
from eventlog.kafka_follow import Records, TopicFollower
from eventlog.port import LoggedRecord, LogReader, LogUnavailable, ReadStart
from projections.activity import Activity
from projections.timeline import Timelines, entry_of
from schemas.event_types import EventType

log = logging.getLogger(__name__)


class LogTail:
    """Timelines and activity of every record applied, and the next offset of each partition."""

    def __init__(self) -> None:
        self.timelines = Timelines()
        self.activity = Activity()
        self.positions: dict[int, int] = {}
        self.undecodable = 0

    def apply(self, records: Sequence[LoggedRecord]) -> None:
        """Folds records in; one already applied (at or before its partition's position) is skipped."""
        for record in records:
            if record.offset < self.positions.get(record.partition, 0):
                continue
            self.positions[record.partition] = record.offset + 1
            try:
                event = decode_fold_event(record.value)
            except UndecodableEvent as error:
                self.undecodable += 1
                log.warning("log record %d/%d is not an event: %s", record.partition, record.offset, error)
                continue
            unknown = None
            if event.type is EventType.UNKNOWN:
                name = orjson.loads(record.value).get("source_event")
                unknown = name if isinstance(name, str) else ""
            self.activity.add(event.type.value, record.appended_at_ms, unknown)
            if event.address is not None:
                self.timelines.add(event.address, entry_of(event))


class TailingLog(LogReader, Protocol):
    """A log reader that can wait for a record past an offset (the embedded log)."""

    async def wait_beyond(self, offset: int, timeout_s: float) -> None:
        """Returns once a record after `offset` exists; raises TimeoutError after `timeout_s`."""


class Pace(Protocol):
    """When a reader sharing its process with the ingester may go on (`streams.embedded.BurstGate`)."""

    async def wait(self) -> None:
        """Returns when the next batch may be applied."""

    def caught_up(self) -> None:
        """The reader reached the head."""


class LogTailFeeder:
    """Keeps a `LogTail` current from a single-partition tailing log (the embedded log); a `Feeder`.

    With a `pace`, each batch waits for it: in `serve` the tail steps aside while a burst is appended,
    as the fold does, rather than decode every event a second time beside the ingester.
    """

    def __init__(self, reader: "TailingLog", tail: LogTail, pace: Pace | None = None) -> None:
        self._reader = reader
        self._tail = tail
        self._pace = pace
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Reads the log from its start, then tails it, in the background."""
        self._task = asyncio.create_task(self._run(), name="log-tail")

    async def stop(self) -> None:
        """Stops tailing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async for batch in self._reader.read_batches(ReadStart(offsets=dict(self._tail.positions))):
                    if self._pace is not None:
                        await self._pace.wait()
                    self._tail.apply(batch)
                if self._pace is not None:
                    self._pace.caught_up()
                last = max(self._tail.positions.values(), default=0) - 1
                with contextlib.suppress(TimeoutError):
                    await self._reader.wait_beyond(last, 1.0)
            except asyncio.CancelledError:
                raise
            except LogUnavailable as error:
                log.warning("the log tail cannot read the log, retrying: %s", error)
                await asyncio.sleep(1.0)
            except Exception:
                log.exception("the log tail failed; retrying")
                await asyncio.sleep(1.0)


class KafkaLogTailFeeder:
    """Keeps a `LogTail` current from the events topic, from offset zero on every partition; a `Feeder`."""

    def __init__(self, bootstrap_servers: str, topic: str, tail: LogTail) -> None:
        self._topic = topic
        self._tail = tail
        self._follower = TopicFollower(bootstrap_servers, topic, self._apply)

    async def start(self) -> None:
        """Tails the topic in the background; it may not exist yet."""
        self._follower.positions = dict(self._tail.positions)
        self._follower.start(f"log-tail:{self._topic}")

    async def stop(self) -> None:
        """Stops tailing."""
        await self._follower.stop()

    def _apply(self, partition: int, records: Records) -> None:
        self._tail.apply(
            [
                LoggedRecord(
                    partition, int(r.offset), bytes(r.key or b""), bytes(r.value or b""), int(r.timestamp)
                )
                for r in records
            ]
        )
