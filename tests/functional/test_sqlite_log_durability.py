"""The embedded log keeps every acknowledged append through `kill -9`, and never half a batch."""

import asyncio
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import cast

import pytest

from eventlog.port import LoggedRecord, LogRecord, LogUnavailable, ReadStart
from eventlog.sqlite import AppendStats, SqliteEventLog

BATCH = 3
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACKS_BEFORE_KILL = 300

# Eight tasks append batches of three records each, concurrently (so commits are grouped), and
# print one line per batch as soon as its append has returned, with the most appends one commit held.
WRITER = """
import asyncio, sys
from pathlib import Path
from eventlog.port import LogRecord
from eventlog.sqlite import SqliteEventLog

async def writer(log, task):
    batch = 0
    while True:
        await log.append(
            [LogRecord(f"t{task}".encode(), f"{task}:{batch}:{i}".encode()) for i in range(int(sys.argv[2]))]
        )
        print(f"ack {task}:{batch} {log.append_stats().largest_group}", flush=True)
        batch += 1

async def main():
    log = SqliteEventLog(Path(sys.argv[1]))
    await log.start()
    await asyncio.gather(*(writer(log, task) for task in range(8)))

asyncio.run(main())
"""


async def read_all(path: Path) -> list[LoggedRecord]:
    log = SqliteEventLog(path)
    await log.start()
    try:
        return [record async for record in log.read(ReadStart())]
    finally:
        await log.stop()


async def test_every_acknowledged_append_survives_kill_9_and_no_batch_is_partial(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        str(path),
        str(BATCH),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    acknowledged: set[str] = set()
    largest_group = 0
    try:
        async with asyncio.timeout(120):  # a guard against a hung child, not a timing assertion
            while len(acknowledged) < ACKS_BEFORE_KILL or largest_group < 2:
                line = await child.stdout.readline()
                assert line, f"the writer ended early: {await child.communicate()}"
                _, batch, group = line.decode().split()
                acknowledged.add(batch)
                largest_group = max(largest_group, int(group))
    finally:
        child.send_signal(signal.SIGKILL)  # mid-stream: the writers never stop on their own
        await child.communicate()
    assert child.returncode == -signal.SIGKILL
    assert largest_group > 1  # the acknowledged appends include some that shared a commit

    records = await read_all(path)

    batches = Counter(record.value.decode().rsplit(":", 1)[0] for record in records)
    assert acknowledged <= set(batches), sorted(acknowledged - set(batches))[:10]
    assert set(batches.values()) == {BATCH}, {b: n for b, n in batches.items() if n != BATCH}
    assert [record.offset for record in records] == list(range(len(records)))
    by_task: dict[bytes, list[int]] = {}
    for record in records:
        by_task.setdefault(record.key, []).append(int(record.value.split(b":")[1]))
    assert all(seen == sorted(seen) for seen in by_task.values())


async def test_appends_that_arrive_together_share_a_commit_and_the_stats_say_so(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    await log.start()
    try:
        await log.append([LogRecord(b"k", b"alone")])
        assert log.append_stats() == AppendStats(commits=1, appends=1, records=1, largest_group=1)

        await asyncio.gather(
            *(log.append([LogRecord(b"k", f"{n}:{i}".encode()) for i in range(n % 3 + 1)]) for n in range(16))
        )

        stats = log.append_stats()
        assert (stats.appends, stats.records) == (17, 1 + sum(n % 3 + 1 for n in range(16)))
        assert stats.commits < stats.appends  # some commit held more than one caller's records
        assert stats.largest_group > 1
        assert await log.head() == {0: stats.records}
    finally:
        await log.stop()


async def test_a_failed_commit_fails_its_whole_batch_and_stores_none_of_it(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    await log.start()
    try:
        await log.append([LogRecord(b"k", b"before")])
        unbindable = LogRecord(b"k", cast(bytes, object()))  # SQLite cannot store it: the commit fails
        outcomes = await asyncio.gather(
            log.append([LogRecord(b"k", b"first"), unbindable]),
            log.append([LogRecord(b"j", b"same-commit")]),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], LogUnavailable)
        assert isinstance(outcomes[1], LogUnavailable)  # grouped into the commit that failed
        assert log.append_stats().commits == 1  # a failed commit is not counted
        await log.append([LogRecord(b"k", b"after")])

        values = [record.value async for record in log.read(ReadStart())]
        assert values == [b"before", b"after"]
        assert log.append_stats() == AppendStats(commits=2, appends=2, records=2, largest_group=1)
        assert await log.head() == {0: 2}
        assert (await log.health()).ok
    finally:
        await log.stop()


def looked(log: SqliteEventLog, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once `log.head()` has answered: a waiter that has looked and found nothing must be woken."""
    answered = asyncio.Event()
    head = log.head

    async def spied() -> dict[int, int]:
        heads = await head()
        answered.set()
        return heads

    monkeypatch.setattr(log, "head", spied)
    return answered


async def test_wait_beyond_wakes_on_an_append_in_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = SqliteEventLog(tmp_path / "log.db", poll_interval_s=3600)  # only the in-process wake-up helps
    await log.start()
    try:
        has_looked = looked(log, monkeypatch)
        waiter = asyncio.create_task(log.wait_beyond(-1, timeout_s=3600))
        await has_looked.wait()  # the append comes after the waiter saw an empty log
        assert not waiter.done()
        await log.append([LogRecord(b"k", b"first")])
        async with asyncio.timeout(60):  # a guard, not a timing assertion: the poll alone would take an hour
            await waiter
        assert (await log.head())[0] == 1
    finally:
        await log.stop()


async def test_wait_beyond_sees_appends_of_another_instance_by_polling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.db"
    tailer, writer = SqliteEventLog(path, poll_interval_s=0.05), SqliteEventLog(path)
    await tailer.start()
    await writer.start()
    try:
        has_looked = looked(tailer, monkeypatch)
        waiter = asyncio.create_task(tailer.wait_beyond(0, timeout_s=3600))
        await has_looked.wait()  # the tailer saw an empty log: only its poll can see the append
        assert not waiter.done()
        await writer.append([LogRecord(b"k", b"a"), LogRecord(b"k", b"b")])
        async with asyncio.timeout(60):
            await waiter
        assert await tailer.head() == {0: 2}
    finally:
        await tailer.stop()
        await writer.stop()


async def test_a_stopped_log_refuses_reads_and_appends_until_started_again(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    await log.start()
    await log.append([LogRecord(b"k", b"before")])
    await log.stop()

    with pytest.raises(LogUnavailable):
        await log.append([LogRecord(b"k", b"after stop")])
    with pytest.raises(LogUnavailable):  # it no longer reopens itself
        _ = [record async for record in log.read(ReadStart())]

    await log.start()
    await log.append([LogRecord(b"k", b"restarted")])
    assert [record.value async for record in log.read(ReadStart())] == [b"before", b"restarted"]
    await log.stop()
