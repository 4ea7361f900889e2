"""The embedded runner: folds the on-disk log in this process with the same fold the Faust agents run.

Its state lives in a SQLite file: the states, the log position they reflect and the actions they
asked for are written in one transaction, so a restart resumes exactly where the last commit ended
(no event folded twice, none skipped) and every action is kept once (an outbox).
"""

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

from domain.actions import Action, decode_action, encode_action
from domain.batch import Batch, BatchFold
from domain.dead_letters import DeadLetter
from domain.fold import HANDLERS, Handler
from eventlog.dead_letters import safe_error
from eventlog.port import LoggedRecord, LogReader, ReadStart
from eventlog.sqlite import wall_clock_ms
from schemas.event_types import EventType
from streams.effector import Effector, Outcome

log = logging.getLogger(__name__)

OnChange = Callable[[str, bytes], None]
PARTITION = 0  # the embedded log has one partition
OnVersion = Callable[[int, list[tuple[str, bytes]]], Awaitable[None]]
P = ParamSpec("P")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS state_rows (
    version INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (version, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_rows (
    version INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (version, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS versions (version INTEGER PRIMARY KEY, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS live (id INTEGER PRIMARY KEY CHECK (id = 0), version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, action_id TEXT UNIQUE NOT NULL, value BLOB NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, log_partition INTEGER NOT NULL, log_offset INTEGER NOT NULL,
    address TEXT, event_id TEXT, error_type TEXT NOT NULL, error TEXT NOT NULL, at_ms INTEGER NOT NULL,
    value BLOB NOT NULL, retried_at_ms INTEGER, UNIQUE (log_partition, log_offset)
);
"""
# Added to the outbox after its first release: why and when an action was given up on, when retried.
_ACTION_COLUMNS = {"error": "TEXT", "given_up_at_ms": "INTEGER", "retried_at_ms": "INTEGER"}
_MIGRATE_UNVERSIONED = """
INSERT OR IGNORE INTO state_rows (version, key, value) SELECT 0, key, value FROM states;
INSERT OR REPLACE INTO versions (version, next_offset) SELECT 0, next_offset FROM position WHERE id = 0;
DROP TABLE states;
DROP TABLE position;
"""


class TailingReader(LogReader, Protocol):
    """A log reader that can also wait for records beyond an offset (the embedded log)."""

    async def wait_beyond(self, offset: int, timeout_s: float) -> None:
        """Returns once a record after `offset` exists; raises TimeoutError after `timeout_s`."""


class VersionChanged(Exception):
    """The live state version changed under this connection (a replay switched it): reload before folding."""


class StateDb:
    """The embedded state file: state versions, the live one, and the actions outbox.

    Each version holds states by key and the next log offset it needs.

    The live version is the one the runner folds into and the projections are built from. A replay
    builds a new version next to it and switches `live` in one transaction; the runner's next commit
    then fails with `VersionChanged` and it reloads from the new version.

    Its methods block on the file. Code on an event loop runs them through `call`, on the file's own
    thread: one at a time, never on the loop.
    """

    def __init__(
        self, path: Path, busy_timeout_s: float = 30.0, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        self._clock = clock  # epoch ms, for the time a dead letter is set aside
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
        )
        self._thread: ThreadPoolExecutor | None = None  # started by the first `call`
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            tables = {
                row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            if "states" in tables and "position" in tables:  # a state file from before versions
                for statement in _MIGRATE_UNVERSIONED.strip().split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(actions)")}
            for column, kind in _ACTION_COLUMNS.items():
                if column not in columns:
                    self._db.execute(f"ALTER TABLE actions ADD COLUMN {column} {kind}")
            if self._db.execute("SELECT 1 FROM live").fetchone() is None:
                self._db.execute("INSERT INTO live (id, version) VALUES (0, 0)")
                self._db.execute("INSERT OR IGNORE INTO versions (version, next_offset) VALUES (0, 0)")
        self.version = self.live_version()

    def close(self) -> None:
        """Closes the file, once the `call` running on its thread (if any) has returned."""
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        self._db.close()

    async def call(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs `work` (a method of this file, or work that calls them) on the file's thread, off the loop.

        Calls run one at a time in the order they were made, so the connection is never used by two
        threads at once; a call whose caller was cancelled still runs to its end before the next.
        """
        if self._thread is None:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(work, *args, **kwargs))

    # -- the live version, as the runner and the projections see it

    def live_version(self) -> int:
        """The version reads are served from now."""
        return int(self._db.execute("SELECT version FROM live WHERE id = 0").fetchone()[0])

    def load(self) -> list[tuple[str, bytes]]:
        """Follows the live version (sets `version`) and returns its states, read in one snapshot."""
        with self._transaction("BEGIN"):
            self.version = self.live_version()
            return list(self.states())

    def snapshot(self) -> tuple[int, list[tuple[str, bytes]]]:
        """The live version's next offset and states, read in one snapshot (for `--verify`)."""
        with self._transaction("BEGIN"):
            version = self.live_version()
            return self.next_offset(version), list(self.states(version))

    def next_offset(self, version: int | None = None) -> int:
        """The offset of the first log record a version (this connection's by default) has not folded."""
        row = self._db.execute(
            "SELECT next_offset FROM versions WHERE version = ?", (self._v(version),)
        ).fetchone()
        return int(row[0]) if row else 0

    def get(self, key: str, version: int | None = None) -> bytes | None:
        """The stored state of a key."""
        row = self._db.execute(
            "SELECT value FROM state_rows WHERE version = ? AND key = ?", (self._v(version), key)
        ).fetchone()
        return bytes(row[0]) if row else None

    def seen(self, key: str, version: int | None = None) -> bytes | None:
        """The recent event ids of a key (see `domain.dedup`)."""
        row = self._db.execute(
            "SELECT value FROM seen_rows WHERE version = ? AND key = ?", (self._v(version), key)
        ).fetchone()
        return bytes(row[0]) if row else None

    def states(self, version: int | None = None) -> Iterator[tuple[str, bytes]]:
        """Every stored state of a version, by key."""
        rows = self._db.execute(
            "SELECT key, value FROM state_rows WHERE version = ? ORDER BY key", (self._v(version),)
        )
        for key, value in rows:
            yield str(key), bytes(value)

    def set_state(self, key: str, value: bytes) -> None:
        """Overwrites one live state outside the fold (for repairs and tests of `--verify`)."""
        self._db.execute(
            "UPDATE state_rows SET value = ? WHERE version = (SELECT version FROM live) AND key = ?",
            (value, key),
        )

    def commit(self, batch: Batch) -> None:
        """Writes a batch's states, ids, actions, dead letters and position into this connection's version.

        In one transaction.

        Raises VersionChanged, writing nothing, when that version is no longer live.
        """
        with self._transaction():
            if self.live_version() != self.version:
                raise VersionChanged(self.version)
            self._write(self.version, batch)
            self._add_actions([placed.action for placed in batch.actions])
            self._add_dead(batch.dead)

    # -- new versions, as a replay builds them

    def create_version(self, next_offset: int) -> int:
        """Starts an empty version that will fold the log from `next_offset`; drops abandoned ones."""
        with self._transaction():
            live = self.live_version()
            for table in ("state_rows", "seen_rows", "versions"):
                self._db.execute(f"DELETE FROM {table} WHERE version != ?", (live,))  # noqa: S608
            version = live + 1
            self._db.execute(
                "INSERT INTO versions (version, next_offset) VALUES (?, ?)", (version, next_offset)
            )
            return version

    def fill(self, version: int, batch: Batch) -> None:
        """Writes a batch of a version being built (no actions: a replay acts on nothing by itself)."""
        with self._transaction():
            self._write(version, batch)

    def switch(
        self, version: int, tail_actions: list[tuple[int, Action]], dead: Sequence[DeadLetter] = ()
    ) -> bool:
        """Makes `version` live if it has folded at least as far as the live one, and drops the old one.

        The actions of `tail_actions` (offset, action) the live version has not reached yet are
        queued, so that events folded only by the new version still get acted on; the `dead` letters
        of the new version join those kept (each log record once). Returns False, changing nothing,
        when the live version is ahead: fold further and try again.
        """
        with self._transaction():
            live = self.live_version()
            live_next = self.next_offset(live)
            if self.next_offset(version) < live_next:
                return False
            self._add_actions([action for offset, action in tail_actions if offset >= live_next])
            self._add_dead(dead)
            self._db.execute("UPDATE live SET version = ? WHERE id = 0", (version,))
            for table in ("state_rows", "seen_rows", "versions"):
                self._db.execute(f"DELETE FROM {table} WHERE version = ?", (live,))  # noqa: S608
        self.version = version  # this connection now follows the version it made live
        return True

    # -- the outbox

    def pending_actions(self, limit: int = 100) -> list[tuple[str, bytes]]:
        """Actions not carried out yet, oldest first."""
        rows = self._db.execute(
            "SELECT action_id, value FROM actions WHERE done = 0 ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [(str(a), bytes(v)) for a, v in rows]

    def __contains__(self, action_id: str, /) -> bool:
        row = self._db.execute("SELECT done FROM actions WHERE action_id = ?", (action_id,)).fetchone()
        return bool(row and row[0])

    def add(self, action_id: str, /) -> None:
        """Marks an action carried out."""
        self._db.execute("UPDATE actions SET done = 1 WHERE action_id = ?", (action_id,))

    def give_up(self, action_id: str, error: str = "") -> None:
        """Marks an action Brevo refused or that failed every attempt: a dead letter, until retried."""
        self._db.execute(
            "UPDATE actions SET done = -1, error = ?, given_up_at_ms = ? WHERE action_id = ?",
            (error, self._clock(), action_id),
        )

    # -- plumbing

    def _v(self, version: int | None) -> int:
        return self.version if version is None else version

    def _write(self, version: int, batch: Batch) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO state_rows (version, key, value) VALUES (?, ?, ?)",
            [(version, key, value) for key, value in batch.states.items()],
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO seen_rows (version, key, value) VALUES (?, ?, ?)",
            [(version, key, value) for key, value in batch.seen.items()],
        )
        if PARTITION in batch.next_offsets:
            self._db.execute(
                "INSERT OR REPLACE INTO versions (version, next_offset) VALUES (?, ?)",
                (version, batch.next_offsets[PARTITION]),
            )

    def _add_dead(self, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        now = self._clock()
        self._db.executemany(
            "INSERT OR IGNORE INTO dead_events (log_partition, log_offset, address, event_id, error_type,"
            " error, at_ms, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.partition,
                    d.offset,
                    d.address,
                    d.event_id,
                    d.error_type,
                    safe_error(d.error),
                    now,
                    d.value,
                )
                for d in dead
            ],
        )
        for letter in dead:
            log.warning(
                "event %s at offset %d set aside as a dead letter: %s: %s",
                letter.event_id,
                letter.offset,
                letter.error_type,
                letter.error,
            )

    def _add_actions(self, actions: list[Action]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO actions (action_id, value) VALUES (?, ?)",
            [(a.action_id, encode_action(a)) for a in actions],
        )

    @contextlib.contextmanager
    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[None]:
        self._db.execute(begin)
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class BurstWatch:
    """When the embedded fold should step aside: while the ingester appends a burst, for a while.

    `serve` runs the ingester and the fold in one process, on one core when that is all there is.
    A campaign's burst is what Brevo waits on (5 s per webhook, then retries) while the views can
    be late: so while the log grows faster than `burst_rate` events/s, the fold waits, up to
    `max_defer_s` after it first fell behind; then it folds at its full speed again, burst or not,
    so the views are never more than about that late. Below the rate (Brevo's steady trickle, a
    thousand events/s) it never waits. The rate is set well under what the ingester takes while the
    fold runs beside it (some 5,000 single-event webhooks/s on one core here): set at that, a burst
    slowed by the fold never looked like one, and the fold never stepped aside.
    """

    def __init__(self, burst_rate: float, max_defer_s: float) -> None:
        self._burst_rate = burst_rate
        self._max_defer_s = max_defer_s
        self._last: tuple[int, float] | None = None  # the head and when it was seen
        self._behind_since: float | None = None

    def pause(self, head: int, now: float) -> float:
        """How long to wait before folding the next batch: 0 to fold now."""
        last, self._last = self._last, (head, now)
        if self._behind_since is None:
            self._behind_since = now
        if last is None or now <= last[1] or now - self._behind_since >= self._max_defer_s:
            return 0.0
        rate = (head - last[0]) / (now - last[1])
        return PAUSE_S if rate >= self._burst_rate else 0.0

    def caught_up(self) -> None:
        """The fold reached the head: the next fall behind starts a new deferral."""
        self._behind_since = None


PAUSE_S = 0.1


class BurstGate:
    """Steps a reader of the embedded log aside while the ingester appends a burst.

    A `BurstWatch` on the log's head. The fold has one; so has each other reader of the log in the
    same process (the timelines' tail), with a watch of its own.
    """

    def __init__(self, reader: TailingReader, burst_rate: float = 2_500.0, max_defer_s: float = 30.0) -> None:
        self._reader = reader
        self._watch = BurstWatch(burst_rate, max_defer_s)

    async def wait(self) -> None:
        """Returns when the next batch may be read on: at once unless a burst is being appended."""
        while True:
            head = (await self._reader.head()).get(PARTITION, 0)
            pause = self._watch.pause(head, time.monotonic())
            if not pause:
                return
            await asyncio.sleep(pause)

    def caught_up(self) -> None:
        """The reader reached the head: the next fall behind starts a new deferral."""
        self._watch.caught_up()


class EmbeddedRunner:
    """Tails the log from the live version's position, folds each batch, commits, then tells `on_change`.

    When a replay switches the live version, the runner reloads: `on_version` gets the new version's
    states (to build the projections it serves from them), then folding goes on from its position.
    """

    def __init__(  # noqa: PLR0913 - the batch size and linger are keyword-only options
        self,
        reader: TailingReader,
        state_db: StateDb,
        on_change: OnChange,
        on_version: OnVersion,
        *,
        batch: int = 2_000,
        linger_s: float = 0.05,
        burst_rate: float = 2_500.0,
        max_defer_s: float = 30.0,
        handlers: Mapping[EventType, Handler] = HANDLERS,
    ) -> None:
        self._handlers = handlers
        self._reader = reader
        self._linger_s = linger_s
        self._gate = BurstGate(reader, burst_rate, max_defer_s)
        self._db = state_db
        self._on_change = on_change
        self._on_version = on_version
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.folded = 0
        self.dead_lettered = 0  # events set aside since start (for the metrics)
        self.position: int | None = None  # the next log offset to fold, once known (for the fold lag)

    async def start(self) -> None:
        """Hands the live version's states to `on_version`, then folds in the background."""
        await self._reload()
        self._task = asyncio.create_task(self._run(), name="embedded-runner")

    async def stop(self) -> None:
        """Stops folding; what was committed stays."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def catch_up(self, *, yield_to_bursts: bool = False) -> int:
        """Folds every record up to the head as it is now; returns how many were folded.

        With `yield_to_bursts`, each batch waits while the ingester appends a burst (`BurstWatch`).
        """
        records: list[LoggedRecord] = []
        count = 0
        self.position = await self._db.call(self._db.next_offset)
        start = ReadStart(offsets={PARTITION: self.position})
        async for page in self._reader.read_batches(start):
            records.extend(page)
            if len(records) >= self._batch:
                if yield_to_bursts:
                    await self._gate.wait()
                count += await self._fold(records)
                records = []
        if records and yield_to_bursts:
            await self._gate.wait()
        return count + (await self._fold(records) if records else 0)

    async def _reload(self) -> None:
        states = await self._db.call(self._db.load)
        await self._on_version(self._db.version, states)

    async def _run(self) -> None:
        while True:
            try:
                if await self._db.call(self._db.live_version) != self._db.version:
                    await self._reload()
                await self.catch_up(yield_to_bursts=True)
                self._gate.caught_up()
                folded_up_to = await self._db.call(self._db.next_offset)
                with contextlib.suppress(TimeoutError):
                    await self._reader.wait_beyond(folded_up_to - 1, 1.0)
                    # Lingers, as a producer does, so that a burst folds in a few large batches (one
                    # state commit each, a customer's state decoded once per batch) instead of one
                    # small batch per group commit competing with the ingester for the same core.
                    await asyncio.sleep(self._linger_s)
            except asyncio.CancelledError:
                raise
            except VersionChanged:
                log.info("a replay switched the live state version; reloading")
            except Exception:
                log.exception("embedded runner failed a batch; retrying")
                await asyncio.sleep(1.0)

    async def _fold(self, records: list[LoggedRecord]) -> int:
        batch = await self._db.call(self._fold_and_commit, records)
        for key, value in batch.states.items():
            self._on_change(key, value)
        self.folded += len(records)
        self.dead_lettered += len(batch.dead)
        self.position = batch.next_offsets.get(PARTITION, self.position)
        return len(records)

    def _fold_and_commit(self, records: list[LoggedRecord]) -> Batch:
        folder = BatchFold(self._db.get, self._db.seen, handlers=self._handlers)
        folder.add_all(records)
        batch = folder.take()
        self._db.commit(batch)
        return batch


class EmbeddedEffector:
    """Carries out the outbox's pending actions with the effector, in this process."""

    def __init__(self, state_db: StateDb, effector: Effector) -> None:
        self._db = state_db
        self._effector = effector
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Works through the outbox in the background."""
        self._task = asyncio.create_task(self._run(), name="embedded-effector")

    async def stop(self) -> None:
        """Stops; pending actions stay in the outbox."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def drain(self) -> int:
        """Handles every pending action once; returns how many were handled."""
        pending = self._db.pending_actions()
        for action_id, value in pending:
            if await self._effector.handle(decode_action(value)) is Outcome.GAVE_UP:
                self._db.give_up(action_id, self._effector.gave_up.pop(action_id, ""))
        return len(pending)

    async def _run(self) -> None:
        while True:
            try:
                if not await self.drain():
                    await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("embedded effector failed; retrying")
                await asyncio.sleep(1.0)
