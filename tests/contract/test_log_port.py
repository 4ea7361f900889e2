"""The log port's contract, held by the embedded SQLite adapter and by the Kafka adapter alike."""

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from eventlog.kafka import KafkaEventLog, KafkaLogSettings
from eventlog.kafka_reader import KafkaLogReader
from eventlog.port import EventLog, LoggedRecord, LogReader, LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from tests.kafka_helpers import new_topic

Opener = Callable[[], tuple[EventLog, LogReader]]


@dataclass
class LogUnderTest:
    """An adapter's append side and read side on a log of their own, and how to open them afresh."""

    kind: str
    log: EventLog
    reader: LogReader
    opener: Opener

    async def reopen(self) -> None:
        """Stops the log and opens new instances on the same storage."""
        await self.log.stop()
        self.log, self.reader = self.opener()
        await self.log.start()

    async def read(self, start: ReadStart | None = None) -> list[LoggedRecord]:
        return [record async for record in self.reader.read(start or ReadStart())]

    async def size(self) -> int:
        return sum((await self.reader.head()).values())


def ticking_clock() -> Callable[[], int]:
    """A clock that moves one millisecond each time it is read: deterministic and strictly increasing."""
    ticks = itertools.count(1_700_000_000_000)
    return lambda: next(ticks)


def sqlite_opener(path: Path) -> Opener:
    clock = ticking_clock()

    def open_log() -> tuple[EventLog, LogReader]:
        log = SqliteEventLog(path, clock=clock)
        return log, log

    return open_log


def kafka_opener(bootstrap: str, topic: str) -> Opener:
    def open_log() -> tuple[EventLog, LogReader]:
        return KafkaEventLog(KafkaLogSettings(bootstrap, topic)), KafkaLogReader(bootstrap, topic)

    return open_log


@pytest.fixture(params=["sqlite", pytest.param("kafka", marks=pytest.mark.kafka)])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LogUnderTest]:
    kind: str = request.param
    if kind == "sqlite":
        opener = sqlite_opener(tmp_path / "log.db")
    else:
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        opener = kafka_opener(bootstrap, await new_topic(bootstrap, partitions=4))
    event_log, reader = opener()
    under_test = LogUnderTest(kind, event_log, reader, opener)
    await event_log.start()
    try:
        yield under_test
    finally:
        await under_test.log.stop()


ADAPTERS = ["sqlite", "kafka"]


def records(prefix: str, count: int, keys: int = 3) -> list[LogRecord]:
    return [
        LogRecord(f"{prefix}-key-{i % keys}".encode(), f"{prefix}-value-{i}".encode()) for i in range(count)
    ]


def whole(read: list[LoggedRecord]) -> Counter[tuple[bytes, bytes]]:
    return Counter((record.key, record.value) for record in read)


def by_partition(read: list[LoggedRecord]) -> dict[int, list[LoggedRecord]]:
    """The records of each partition in the order read (partitions may interleave differently)."""
    grouped: dict[int, list[LoggedRecord]] = {}
    for record in read:
        grouped.setdefault(record.partition, []).append(record)
    return grouped


def sent(appended: list[LogRecord]) -> Counter[tuple[bytes, bytes]]:
    return Counter((record.key, record.value) for record in appended)


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_an_empty_log_reads_nothing(log: LogUnderTest) -> None:
    assert await log.read() == []
    assert await log.size() == 0


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_health_is_ok(log: LogUnderTest) -> None:
    health = await log.log.health()
    assert health.ok, health.detail


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_appended_records_read_back_whole_from_the_beginning(log: LogUnderTest) -> None:
    appended = [*records("a", 20), LogRecord(b"binary\x00key", bytes(range(256)))]
    await log.log.append(appended[:7])
    await log.log.append(appended[7:])

    read = await log.read()

    assert whole(read) == sent(appended)
    assert len({(record.partition, record.offset) for record in read}) == len(appended)


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_each_key_comes_back_in_append_order_under_concurrent_appends(log: LogUnderTest) -> None:
    tasks, keys_per_task, rounds = 12, 3, 15

    async def appender(task: int) -> None:
        for round_ in range(rounds):
            await log.log.append(
                [LogRecord(f"t{task}-k{k}".encode(), f"{round_}".encode()) for k in range(keys_per_task)]
            )

    await asyncio.gather(*(appender(task) for task in range(tasks)))

    by_key: dict[bytes, list[int]] = {}
    for record in await log.read():
        by_key.setdefault(record.key, []).append(int(record.value))
    assert len(by_key) == tasks * keys_per_task
    assert all(rounds_read == list(range(rounds)) for rounds_read in by_key.values()), by_key


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_head_advances_by_the_number_of_records_appended(log: LogUnderTest) -> None:
    before = await log.size()
    await log.log.append(records("h", 5))
    assert await log.size() == before + 5
    await log.log.append(records("i", 1))
    assert await log.size() == before + 6


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_reading_from_offsets_returns_only_what_comes_after(log: LogUnderTest) -> None:
    earlier, later = records("early", 10), records("late", 8)
    await log.log.append(earlier)
    position = await log.reader.head()
    await log.log.append(later)

    read = await log.read(ReadStart(offsets=position))

    assert whole(read) == sent(later)
    assert all(record.offset >= position.get(record.partition, 0) for record in read)


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_reading_from_a_time_returns_what_was_appended_at_or_after_it(log: LogUnderTest) -> None:
    await log.log.append(records("before", 6))
    await log.log.append(records("after", 6))
    everything = await log.read()
    since = min(record.appended_at_ms for record in everything if record.value.startswith(b"after"))

    read = await log.read(ReadStart(at_ms=since))

    assert whole(read) == whole([record for record in everything if record.appended_at_ms >= since])
    assert whole(read) >= sent(records("after", 6))
    later_than_all = max(record.appended_at_ms for record in everything) + 1
    assert await log.read(ReadStart(at_ms=later_than_all)) == []


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_a_multi_record_append_is_wholly_visible_once_it_returns(log: LogUnderTest) -> None:
    for round_ in range(5):
        batch = records(f"batch{round_}", 7, keys=7)
        await log.log.append(batch)
        assert whole(await log.read()) >= sent(batch)


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_a_read_stops_at_the_head_of_when_it_began(log: LogUnderTest) -> None:
    await log.log.append(records("first", 4))
    read: list[LoggedRecord] = []
    async for record in log.reader.read(ReadStart()):
        if not read:
            await log.log.append(records("during", 4))
        read.append(record)
    assert whole(read) == sent(records("first", 4))


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_appends_after_a_restart_keep_the_earlier_records(log: LogUnderTest) -> None:
    await log.log.append(records("old", 5))

    await log.log.stop()
    await log.log.start()
    await log.log.append(records("restarted", 3))
    await log.reopen()
    await log.log.append(records("reopened", 2))

    expected = records("old", 5) + records("restarted", 3) + records("reopened", 2)
    assert whole(await log.read()) == sent(expected)
    assert await log.size() == 10


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_batches_hold_what_a_read_gives_in_the_same_order(log: LogUnderTest) -> None:
    appended = records("paged", 2_500, keys=50)  # more than one page of the embedded log
    for first in range(0, len(appended), 500):
        await log.log.append(appended[first : first + 500])
    position = {partition: end // 2 for partition, end in (await log.reader.head()).items()}

    for start in (ReadStart(), ReadStart(offsets=position)):
        batches = [list(batch) async for batch in log.reader.read_batches(start)]
        assert len(batches) > 1
        assert all(batches)
        assert by_partition([record for batch in batches for record in batch]) == by_partition(
            await log.read(start)
        )


@pytest.mark.parametrize("log", ADAPTERS, indirect=True)
async def test_a_read_left_after_its_first_batch_leaves_the_log_readable(log: LogUnderTest) -> None:
    appended = records("left", 2_500, keys=50)
    await log.log.append(appended)
    async for _ in log.reader.read_batches(ReadStart()):
        break  # the embedded log is reading the next page ahead meanwhile

    await log.log.append(records("after", 3))
    assert whole(await log.read()) == sent(appended + records("after", 3))
