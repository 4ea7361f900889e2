"""The embedded adapter of the event log: one append-only SQLite table, durable on every acknowledged append.

The log is a single partition (0), so it keeps a total order and therefore the order of every key.
WAL mode with `synchronous=FULL` syncs the write-ahead log at each commit: an append that returned
survives `kill -9` and power loss. Every SQLite call runs on one dedicated thread, and appends that
arrive while a commit is in flight are group-committed in the next transaction; `append_stats()`
tells how many commits held how many appends.
"""

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from eventlog.port import LoggedRecord, LogHealth, LogRecord, LogUnavailable, ReadStart

log = logging.getLogger(__name__)

T = TypeVar("T")

PARTITION = 0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    "offset" INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    value BLOB NOT NULL,
    appended_at_ms INTEGER NOT NULL
)
"""
_LAST = 'SELECT "offset", appended_at_ms FROM events ORDER BY "offset" DESC LIMIT 1'
# The casts give every column the Python type a LoggedRecord holds, so a page needs no conversion.
_PAGE = (
    'SELECT "offset", CAST(key AS BLOB), CAST(value AS BLOB), CAST(appended_at_ms AS INTEGER) '
    'FROM events WHERE "offset" >= ? AND "offset" < ? ORDER BY "offset" LIMIT ?'
)


def wall_clock_ms() -> int:
    """Milliseconds since the epoch, by the wall clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class AppendStats:
    """The successful commits of one `SqliteEventLog` since it was made, and what they held."""

    commits: int = 0
    appends: int = 0  # calls of `append` (one per caller) that those commits acknowledged
    records: int = 0
    largest_group: int = 0  # the most appends that one commit held

    def after_commit(self, appends: int, records: int) -> "AppendStats":
        """These stats with one more commit of `appends` calls holding `records` records."""
        return AppendStats(
            self.commits + 1,
            self.appends + appends,
            self.records + records,
            max(self.largest_group, appends),
        )


@dataclass(slots=True)
class _PendingAppend:
    """One caller's records waiting for the next commit, and the future that tells it the outcome."""

    records: Sequence[LogRecord]
    done: "asyncio.Future[None]"


class SqliteEventLog:
    """An append-only log in one SQLite file: the append side (`EventLog`) and the read side (`LogReader`)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        page_size: int = 1000,
        busy_timeout_ms: int = 5000,
        poll_interval_s: float = 0.1,
    ) -> None:
        self._path = path
        self._clock = clock
        self._page_size = page_size
        self._busy_timeout_ms = busy_timeout_ms
        self._poll_interval_s = poll_interval_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # created, used and closed on the executor's thread
        self._stopped = False  # stop() was called, and start() not since
        self._open_lock = asyncio.Lock()
        self._pending: list[_PendingAppend] = []
        self._committer: asyncio.Task[None] | None = None
        self._appended = asyncio.Event()  # set, then replaced, after each commit of this process
        self._stats = AppendStats()

    # --- the append side -------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped = False
        try:
            await self._connect()
        except LogUnavailable as error:
            log.warning("event log not openable at start-up, will retry on demand: %s", error)

    async def stop(self) -> None:
        self._stopped = True  # until the next start(): a read or an append then fails, never reopens
        committer = self._committer
        if committer is not None:
            await asyncio.wait([committer])  # lets the appends already taken finish
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(executor, self._close)
        executor.shutdown(wait=False)  # its only job is done; the thread exits on its own

    async def append(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        await self._connect()
        pending = _PendingAppend(list(records), asyncio.get_running_loop().create_future())
        self._pending.append(pending)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending(), name=f"sqlite-log:{self._path}")
        await pending.done

    def append_stats(self) -> AppendStats:
        """How many commits this instance made, and the appends and records they held."""
        return self._stats

    async def health(self) -> LogHealth:
        try:
            await self._connect()
            head = await self._run(self._check_writable)
        except (LogUnavailable, sqlite3.Error) as error:
            return LogHealth(ok=False, detail=f"sqlite {self._path}: {error!r}")
        return LogHealth(ok=True, detail=f"sqlite {self._path} (next offset {head})")

    # --- the read side ---------------------------------------------------------------------------

    async def head(self) -> dict[int, int]:
        await self._connect()
        return {PARTITION: await self._run_reading(self._next_offset)}

    async def read(self, start: ReadStart) -> AsyncIterator[LoggedRecord]:
        async for rows in self.read_batches(start):
            for row in rows:
                yield row

    async def read_batches(self, start: ReadStart) -> AsyncIterator[list[LoggedRecord]]:
        """Pages of records, each read on the database thread."""
        if start.offsets is not None and start.at_ms is not None:
            raise ValueError("a read starts at given offsets or at a time, not both")
        await self._connect()
        end = await self._run_reading(self._next_offset)
        if start.offsets is not None:
            position = max(0, start.offsets.get(PARTITION, 0))
        elif start.at_ms is not None:
            position = await self._run_reading(self._first_at_or_after, start.at_ms, end)
        else:
            position = 0
        while position < end:
            rows = await self._run_reading(self._page, position, end)
            if not rows:
                return
            position = rows[-1].offset + 1
            yield rows

    async def wait_beyond(self, offset: int, timeout_s: float) -> None:
        """Returns once a record after `offset` exists; raises TimeoutError after `timeout_s` without one.

        Pass the offset of the last record already read (-1 for none). An append of this process wakes
        the wait at once; one of another process is seen by looking at the file every `poll_interval_s`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            appended = self._appended  # taken before looking, so a commit in between is not missed
            if (await self.head())[PARTITION] > offset + 1:  # the head is the last offset + 1
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no record after offset {offset} in {self._path} within {timeout_s}s")
            with contextlib.suppress(TimeoutError):  # the poll's own timeout: look at the file again
                async with asyncio.timeout(min(remaining, self._poll_interval_s)):
                    await appended.wait()

    # --- group commit ----------------------------------------------------------------------------

    async def _commit_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            records = [record for pending in batch for record in pending.records]
            try:
                await self._run(self._write, records, self._clock())
            except BaseException as error:
                failure = LogUnavailable(f"append to {self._path} failed: {error!r}")
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(failure)
                if not isinstance(error, Exception):
                    self._fail_pending(failure)
                    raise
                log.warning("append of %d records to %s failed: %r", len(records), self._path, error)
                continue
            self._stats = self._stats.after_commit(len(batch), len(records))
            for pending in batch:
                if not pending.done.done():  # a caller that gave up still had its records stored
                    pending.done.set_result(None)
            self._appended.set()
            self._appended = asyncio.Event()

    def _fail_pending(self, failure: LogUnavailable) -> None:
        pending, self._pending = self._pending, []
        for waiting in pending:
            if not waiting.done.done():
                waiting.done.set_exception(failure)

    # --- the executor thread ---------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._conn is not None:
            return
        if self._stopped:
            raise LogUnavailable(f"the log {self._path} was stopped")
        async with self._open_lock:
            if self._conn is None:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-log")
                try:
                    await self._run(self._open)
                except sqlite3.Error as error:
                    raise LogUnavailable(f"sqlite {self._path}: {error!r}") from error

    async def _run(self, call: Callable[..., T], *args: object) -> T:
        if self._executor is None:
            raise LogUnavailable(f"sqlite {self._path} is stopped")
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def _run_reading(self, call: Callable[..., T], *args: object) -> T:
        try:
            return await self._run(call, *args)
        except sqlite3.Error as error:
            raise LogUnavailable(f"read of {self._path} failed: {error!r}") from error

    def _open(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)  # transactions are begun explicitly
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode is {mode}, not wal")
            conn.execute("PRAGMA synchronous=FULL")  # sync the WAL at each commit
            conn.execute(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("the log is closed")
        return self._conn

    def _write(self, records: Sequence[LogRecord], now_ms: int) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")  # takes the write lock now, so the offsets read below stay ours
        try:
            last = conn.execute(_LAST).fetchone()
            first = 0 if last is None else int(last[0]) + 1
            at_ms = now_ms if last is None else max(now_ms, int(last[1]))  # time never goes back in the log
            conn.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?)",
                [(first + i, record.key, record.value, at_ms) for i, record in enumerate(records)],
            )
            conn.execute("COMMIT")
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

    def _check_writable(self) -> int:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute('DELETE FROM events WHERE "offset" < 0')  # a write that changes nothing
            return self._next_offset()
        finally:
            conn.execute("ROLLBACK")

    def _next_offset(self) -> int:
        last = self._connection().execute(_LAST).fetchone()
        return 0 if last is None else int(last[0]) + 1

    def _first_at_or_after(self, at_ms: int, end: int) -> int:
        """Binary search over offsets: the log's times never decrease, so this finds the first in O(log n)."""
        conn = self._connection()
        low, high = 0, end
        while low < high:
            middle = (low + high) // 2
            row = conn.execute(
                'SELECT "offset", appended_at_ms FROM events WHERE "offset" >= ? ORDER BY "offset" LIMIT 1',
                (middle,),
            ).fetchone()
            if row is None or int(row[0]) >= end:
                high = middle
            elif int(row[1]) < at_ms:
                low = int(row[0]) + 1
            else:
                high = middle
        return low

    def _page(self, position: int, end: int) -> list[LoggedRecord]:
        rows = self._connection().execute(_PAGE, (position, end, self._page_size))
        # Row by row rather than fetchall(): each row's tuple is freed once its record is made. The
        # record is made by tuple.__new__ straight from the row's fields (no keyword handling).
        make = tuple.__new__
        return [make(LoggedRecord, (PARTITION, *row)) for row in rows]
