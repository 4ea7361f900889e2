"""The Kafka pipeline's progress as the projections service's `/metrics` shows it.

On the embedded log `serve` runs the fold and the effector in its own process and counts them there.
On Kafka they run in the worker, so the projections service reads where they stand from the broker,
before each scrape: the fold's lag is the events topic's end offsets minus what the live generation's
fold group committed; the actions are counted by offsets too (emitted: the actions topic's records;
handled: what the effector's group committed; dead-lettered: the records of the dead-letter topics).
A scrape never waits on the broker for more than `timeout_s`: the figures then say they are stale.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from eventlog.kafka_positions import KafkaPositions, Offsets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineTopics:
    """The topics and consumer groups the watch reads; `fold_group` names the live generation's group."""

    events: str
    actions: str
    actions_dead: str
    events_dead: str
    fold_group: Callable[[], str]
    effects_group: str


@dataclass
class Positions:
    """One reading of the broker."""

    events_end: Offsets = field(default_factory=dict)
    folded: Offsets = field(default_factory=dict)
    actions_end: Offsets = field(default_factory=dict)
    actions_handled: Offsets = field(default_factory=dict)
    dead_first: Offsets = field(default_factory=dict)
    dead_end: Offsets = field(default_factory=dict)
    events_dead_first: Offsets = field(default_factory=dict)
    events_dead_end: Offsets = field(default_factory=dict)


def held(first: Offsets, end: Offsets) -> int:
    """Records a topic holds: each partition's end minus its first offset still held."""
    return sum(last - first.get(partition, 0) for partition, last in end.items())


def fold_lag(positions: Positions) -> dict[int, int]:
    """Records of each events partition the fold group has not committed past (all, when it never did)."""
    return {p: max(0, end - positions.folded.get(p, 0)) for p, end in sorted(positions.events_end.items())}


class PipelineWatch:
    """Reads the pipeline's positions before each scrape and builds their metric families."""

    def __init__(
        self,
        positions: KafkaPositions,
        topics: PipelineTopics,
        *,
        timeout_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._positions = positions
        self._topics = topics
        self._timeout_s = timeout_s
        self._clock = clock
        self._last: Positions | None = None
        self._read_at: float | None = None
        self._failing = False

    async def refresh(self) -> None:
        """One reading; on a broker error or past `timeout_s` the last reading stays (and ages)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                self._last = await self._read()
            self._read_at = self._clock()
            if self._failing:
                log.info("reading the pipeline's positions works again")
            self._failing = False
        except (KafkaError, TimeoutError) as error:
            if not self._failing:
                log.warning("cannot read the pipeline's positions from the broker: %r", error)
            self._failing = True
            await self._positions.close()  # the next scrape starts with new connections

    async def _read(self) -> Positions:
        topics, read = self._topics, self._positions
        return Positions(
            events_end=await read.end_offsets(topics.events),
            folded=await read.committed(topics.fold_group(), topics.events),
            actions_end=await read.end_offsets(topics.actions),
            actions_handled=await read.committed(topics.effects_group, topics.actions),
            dead_first=await read.first_offsets(topics.actions_dead),
            dead_end=await read.end_offsets(topics.actions_dead),
            events_dead_first=await read.first_offsets(topics.events_dead),
            events_dead_end=await read.end_offsets(topics.events_dead),
        )

    @property
    def last(self) -> Positions | None:
        """The last reading that succeeded (None before the first)."""
        return self._last

    @property
    def failing(self) -> bool:
        """True when the last reading failed."""
        return self._failing

    def families(self) -> Iterator[Metric]:
        """The fold lag by partition, the actions by stage, and how old the reading is."""
        now = self._clock()
        yield GaugeMetricFamily(
            "tajo_pipeline_positions_age_seconds",
            "seconds since the positions below were read from the broker (-1: never)",
            value=-1.0 if self._read_at is None else now - self._read_at,
        )
        last = self._last
        if last is None:
            return
        lag = GaugeMetricFamily(
            "tajo_fold_lag_records", "records in the log not folded yet, by partition", labels=["partition"]
        )
        for partition, records in fold_lag(last).items():
            lag.add_metric([str(partition)], records)
        yield lag
        yield CounterMetricFamily(
            "tajo_actions_emitted",
            "actions the fold asked for (records of the actions topic)",
            value=sum(last.actions_end.values()),
        )
        yield CounterMetricFamily(
            "tajo_actions_handled",
            "actions the effector is done with, carried out or dead-lettered (its committed offsets)",
            value=sum(last.actions_handled.values()),
        )
        yield CounterMetricFamily(
            "tajo_actions_dead_lettered",
            "actions the effector gave up on (records held in the dead-letter topic)",
            value=held(last.dead_first, last.dead_end),
        )
        yield CounterMetricFamily(
            "tajo_events_dead_lettered",
            "events the fold set aside (records held in the events dead-letter topic)",
            value=held(last.events_dead_first, last.events_dead_end),
        )

    async def close(self) -> None:
        """Closes the broker connections."""
        await self._positions.close()
