"""The fold's Faust runtime: a batch of events in, each touched key's state out once, offsets tracked.

For each batch the agent hands over, `TableFold`:
1. checks each record's offset against the partition's tracking record (the next offset the fold
   expects, kept in the `seen` table's changelog with the batch's writes). A record past it means
   records were skipped upstream (Faust around a rebalance): the partition is rewound to the
   expected offset and the records are folded from there. A record before it was folded already.
2. folds the records in order with the batch core (`domain.batch`);
3. sets each touched key's state (with its position), its recent ids and each partition's tracking
   record in the stores in memory, then, in the background, publishes the batch's actions, waits
   for their acknowledgements and for the earlier batch's writes, writes the rest to the tables'
   changelogs and waits once for all acknowledgements. Meanwhile the consumer fetches and hands over
   the next batch; it acknowledges this batch's offsets for commit once these writes are
   acknowledged (`streams.faust_batches`).

Actions go out before the states that record their events, so a crash in between re-folds the
event and publishes the same action again (same id; the effector carries it out once), never
loses it. Dead letters (events the fold set aside, `domain.dead_letters`) go to the dead-letter
topic the same way, before the states that mark them. Every state carries its position, so writes
that reached the broker before a crash are never applied twice.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from domain.actions import encode_action
from domain.batch import Batch, BatchFold, Record, decode_position, encode_position, position_key
from domain.fold import HANDLERS, Handler
from eventlog.dead_letters import dead_topic, event_headers
from eventlog.kafka_writer import KeyValue, PartitionWriter
from eventlog.sqlite import wall_clock_ms
from schemas.event_types import EventType
from streams.faust_batches import Handled

log = logging.getLogger(__name__)

Seek = Callable[[int, int], Awaitable[None]]
LOG_EVERY_S = 10.0
R = TypeVar("R", bound=Record)


@dataclass
class FoldStats:
    """Counts since start: batches, records folded, skipped as folded before, rewinds; time spent.

    A batch's writes overlap the next batch's fetch and fold, so the two times add up to more than
    the time that passed.
    """

    batches: int = 0
    records: int = 0
    refolds: int = 0
    rewinds: int = 0
    fold_s: float = 0.0
    write_s: float = 0.0
    _shown: float = field(default_factory=time.monotonic)

    def count(self, batch: Batch, fold_s: float, write_s: float) -> None:
        """Adds a batch; logs the totals at most every LOG_EVERY_S."""
        self.records += batch.records
        self.refolds += batch.refolds
        self.fold_s += fold_s
        self.write_s += write_s
        now = time.monotonic()
        if now - self._shown >= LOG_EVERY_S:
            self._shown = now
            log.info(
                "fold: %d records in %d batches (%.0f per batch), %d refolds, %d rewinds; "
                "%.1fs folding, %.1fs writing (overlapping the next batches)",
                self.records,
                self.batches,
                self.records / max(self.batches, 1),
                self.refolds,
                self.rewinds,
                self.fold_s,
                self.write_s,
            )


@dataclass
class TableFold:
    """Folds batches of events-topic records into the engagement and seen tables."""

    states: MutableMapping[bytes, bytes]  # the engagement table's store
    seen: MutableMapping[bytes, bytes]  # the seen table's store (ids and tracking records)
    states_changelog: str
    seen_changelog: str
    actions_topic: str
    writer: PartitionWriter
    seek: Seek
    events_topic: str = "tajo.events"  # where the records come from: its `.dead` topic takes dead letters
    handlers: Mapping[EventType, Handler] = field(default_factory=lambda: HANDLERS)
    on_stored: Callable[[bytes, int], None] = lambda _key, _partition: None
    keep: int = 20_000  # working copies kept between batches (decoded states of the hottest keys)
    stats: FoldStats = field(default_factory=FoldStats)
    _expected: dict[int, int | None] = field(default_factory=dict)
    _rewinding: dict[int, int] = field(default_factory=dict)
    _folder: BatchFold | None = None
    _writing: "asyncio.Future[None] | None" = None  # the latest batch's writes

    def forget_positions(self) -> None:
        """Forgets what it knows of partitions (on a rebalance): the tables are the truth again."""
        self._expected.clear()
        self._rewinding.clear()
        if self._folder is not None:
            self._folder.forget()

    async def fold(self, records: Sequence[R]) -> Handled:
        """Folds one batch and starts writing its effects (the store in memory sees them at once).

        Hands back the records that are done (folded now or before), whose offsets may be committed
        once `written` completes: when every write of the batch is acknowledged by the broker.
        The others came past a gap and will be handed over again after the rewind.
        """
        started = time.perf_counter()
        done, accepted = await self._in_order(records)
        self.stats.batches += 1
        if not accepted:
            return Handled(done, _nothing())
        if self._folder is None:
            self._folder = BatchFold(
                self._load_state, self._load_seen, keep=self.keep, handlers=self.handlers
            )
        self._folder.add_all(accepted)
        batch = self._folder.take()
        actions, changes = self._store(batch)
        earlier = self._writing
        self._writing = writing = asyncio.ensure_future(
            self._write(batch, actions, changes, earlier, time.perf_counter() - started)
        )
        return Handled(done, writing)

    async def _in_order(self, records: Sequence[R]) -> tuple[list[R], list[R]]:
        """The records at or before each partition's tracked position, and those that continue it.

        A record past the position means records were skipped upstream: the partition is rewound.
        """
        done: list[R] = []
        accepted: list[R] = []
        for record in records:
            partition, offset = record.partition, record.offset
            rewind_to = self._rewinding.get(partition)
            if rewind_to is not None:
                if offset != rewind_to:
                    continue  # fetched before the rewind took effect: it comes again, in order
                del self._rewinding[partition]
            expected = self._expected_of(partition)
            if expected is not None and offset > expected:
                log.warning(
                    "partition %d: handed offset %d while the fold is at %d; rewinding to %d",
                    partition,
                    offset,
                    expected,
                    expected,
                )
                self.stats.rewinds += 1
                self._rewinding[partition] = expected
                await self.seek(partition, expected)
                continue
            done.append(record)
            if expected is not None and offset < expected:
                self.stats.refolds += 1
                continue
            accepted.append(record)
            self._expected[partition] = offset + 1
        return done, accepted

    def _expected_of(self, partition: int) -> int | None:
        if partition not in self._expected:
            self._expected[partition] = decode_position(self.seen.get(position_key(partition)))
        return self._expected[partition]

    def _load_state(self, key: str) -> bytes | None:
        return self.states.get(key.encode())

    def _load_seen(self, key: str) -> bytes | None:
        return self.seen.get(key.encode())

    def _store(self, batch: Batch) -> tuple[list[KeyValue], dict[tuple[str, int], list[KeyValue]]]:
        """Sets the batch's changes in the stores in memory; the actions and changelog records to send."""
        actions = [(placed.action.address.encode(), encode_action(placed.action)) for placed in batch.actions]
        out: dict[tuple[str, int], list[KeyValue]] = defaultdict(list)
        for key, value in batch.states.items():
            partition = batch.partitions[key]
            encoded = key.encode()
            self.states[encoded] = value
            self.on_stored(encoded, partition)
            out[self.states_changelog, partition].append((encoded, value))
        for key, value in batch.seen.items():
            partition = batch.partitions[key]
            encoded = key.encode()
            self.seen[encoded] = value
            out[self.seen_changelog, partition].append((encoded, value))
        for partition, next_offset in batch.next_offsets.items():
            tracking = (position_key(partition), encode_position(next_offset))
            self.seen[tracking[0]] = tracking[1]
            out[self.seen_changelog, partition].append(tracking)
        return actions, out

    async def _write(
        self,
        batch: Batch,
        actions: list[KeyValue],
        changes: dict[tuple[str, int], list[KeyValue]],
        earlier: "asyncio.Future[None] | None",
        fold_s: float,
    ) -> None:
        """Publishes the actions, then the changelog records, each acknowledged before what follows.

        The changelog records wait for the earlier batch's writes too: a state carries every event
        of its key up to its position, so it must not reach the changelog before the actions of the
        earlier batch's events did.
        """
        started = time.perf_counter()
        if batch.dead:
            await self.writer.send_with_headers(dead_topic(self.events_topic), self._dead_records(batch))
        if actions:
            await self.writer.send_keyed(self.actions_topic, actions)
        if earlier is not None:
            await asyncio.shield(earlier)
        await self.writer.write(changes)
        self.stats.count(batch, fold_s, time.perf_counter() - started)

    def _dead_records(self, batch: Batch) -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
        now = wall_clock_ms()
        out = []
        for letter in batch.dead:
            log.warning(
                "event %s at %s[%d]@%d set aside as a dead letter: %s: %s",
                letter.event_id,
                self.events_topic,
                letter.partition,
                letter.offset,
                letter.error_type,
                letter.error,
            )
            headers = event_headers(letter, self.events_topic, now)
            out.append(((letter.address or "").encode(), letter.value, headers))
        return out


async def _nothing() -> None:
    """Nothing to write."""
