"""The fold's Faust runtime: a batch of events in, each touched key's state out once, offsets tracked.

For each batch the agent hands over, `TableFold`:
1. checks each record's offset against the partition's tracking record (the next offset the fold
   expects, kept in the `seen` table's changelog with the batch's writes). A record past it means
   records were skipped upstream (Faust around a rebalance): the partition is rewound to the
   expected offset and the records are folded from there. A record before it was folded already.
2. folds the records in order with the batch core (`streams.batch`);
3. publishes the batch's actions and waits for their acknowledgements, then writes each touched
   key's state (with its position), its recent ids and each partition's tracking record to the
   tables' changelogs and waits once for all acknowledgements. Only then does the agent ask for the
   next batch, which is when Faust acknowledges this one's offsets for commit.

Actions go out before the states that record their events, so a crash in between re-folds the
event and publishes the same action again (same id; the effector carries it out once), never
loses it. Every state carries its position, so writes that reached the broker before a crash are
never applied twice.
"""

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field

from eventlog.kafka_writer import KeyValue, PartitionWriter
from streams.actions import encode_action
from streams.batch import Batch, BatchFold, Record, decode_position, encode_position, position_key

log = logging.getLogger(__name__)

Seek = Callable[[int, int], Awaitable[None]]


@dataclass
class FoldStats:
    """Counts since start: batches, records folded, skipped as folded before, and rewinds."""

    batches: int = 0
    records: int = 0
    refolds: int = 0
    rewinds: int = 0


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
    on_stored: Callable[[bytes, int], None] = lambda _key, _partition: None
    stats: FoldStats = field(default_factory=FoldStats)
    _expected: dict[int, int | None] = field(default_factory=dict)
    _rewinding: dict[int, int] = field(default_factory=dict)

    def forget_positions(self) -> None:
        """Forgets what it knows of partitions (on a rebalance): the tables are the truth again."""
        self._expected.clear()
        self._rewinding.clear()

    async def fold(self, records: Sequence[Record]) -> None:
        """Folds one batch and writes its effects; returns once all are acknowledged by the broker."""
        accepted = await self._in_order(records)
        self.stats.batches += 1
        if not accepted:
            return
        folder = BatchFold(self._load_state, self._load_seen)
        folder.add_all(accepted)
        batch = folder.take()
        self.stats.records += batch.records
        self.stats.refolds += batch.refolds
        await self._write(batch)

    async def _in_order(self, records: Sequence[Record]) -> list[Record]:
        """The records that continue each partition's tracked position; rewinds a partition on a gap."""
        accepted: list[Record] = []
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
            if expected is not None and offset < expected:
                self.stats.refolds += 1
                continue
            accepted.append(record)
            self._expected[partition] = offset + 1
        return accepted

    def _expected_of(self, partition: int) -> int | None:
        if partition not in self._expected:
            self._expected[partition] = decode_position(self.seen.get(position_key(partition)))
        return self._expected[partition]

    def _load_state(self, key: str) -> bytes | None:
        return self.states.get(key.encode())

    def _load_seen(self, key: str) -> bytes | None:
        return self.seen.get(key.encode())

    async def _write(self, batch: Batch) -> None:
        if batch.actions:
            await self.writer.send_keyed(
                self.actions_topic,
                [(placed.action.address.encode(), encode_action(placed.action)) for placed in batch.actions],
            )
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
        await self.writer.write(out)
