"""The embedded runner: folds the on-disk log in this process with the same fold the Faust agents run.

Its state lives in a SQLite file: the states, the log position they reflect and the actions they
asked for are written in one transaction, so a restart resumes exactly where the last commit ended
(no event folded twice, none skipped) and every action is kept once (an outbox).
"""

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from eventlog.port import LoggedRecord, LogReader, ReadStart
from streams.actions import Action, decode_action, encode_action
from streams.apply import apply_record
from streams.effector import Effector, Outcome

log = logging.getLogger(__name__)

OnChange = Callable[[str, bytes], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS states (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 0), next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, action_id TEXT UNIQUE NOT NULL, value BLOB NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
"""


class StateDb:
    """The embedded state file: states by key, the next log offset to fold, and the actions outbox."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Closes the file."""
        self._db.close()

    def next_offset(self) -> int:
        """The offset of the first log record not folded yet."""
        row = self._db.execute("SELECT next_offset FROM position WHERE id = 0").fetchone()
        return int(row[0]) if row else 0

    def get(self, key: str) -> bytes | None:
        """The stored state of a key."""
        row = self._db.execute("SELECT value FROM states WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def states(self) -> Iterator[tuple[str, bytes]]:
        """Every stored state."""
        for key, value in self._db.execute("SELECT key, value FROM states ORDER BY key"):
            yield str(key), bytes(value)

    def commit(self, changes: dict[str, bytes], actions: list[Action], next_offset: int) -> None:
        """Writes states, actions and the new position in one transaction."""
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO states (key, value) VALUES (?, ?)", changes.items())
            self._db.executemany(
                "INSERT OR IGNORE INTO actions (action_id, value) VALUES (?, ?)",
                [(a.action_id, encode_action(a)) for a in actions],
            )
            self._db.execute(
                "INSERT OR REPLACE INTO position (id, next_offset) VALUES (0, ?)", (next_offset,)
            )

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

    def give_up(self, action_id: str) -> None:
        """Marks an action Brevo refused or that failed every attempt: kept, never tried again."""
        self._db.execute("UPDATE actions SET done = -1 WHERE action_id = ?", (action_id,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class EmbeddedRunner:
    """Tails the log from the stored position, folds each batch, commits, then tells `on_change`."""

    def __init__(
        self,
        reader: LogReader,
        wait_beyond: Callable[[int, float], Awaitable[None]],
        state_db: StateDb,
        on_change: OnChange,
        batch: int = 500,
    ) -> None:
        self._reader = reader
        self._wait_beyond = wait_beyond
        self._db = state_db
        self._on_change = on_change
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self.folded = 0

    async def start(self) -> None:
        """Feeds the stored states to `on_change`, then folds in the background."""
        for key, value in self._db.states():
            self._on_change(key, value)
        self._task = asyncio.create_task(self._run(), name="embedded-runner")

    async def stop(self) -> None:
        """Stops folding; what was committed stays."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def catch_up(self) -> int:
        """Folds every record up to the head as it is now; returns how many were folded."""
        records: list[LoggedRecord] = []
        count = 0
        async for record in self._reader.read(ReadStart(offsets={0: self._db.next_offset()})):
            records.append(record)
            if len(records) >= self._batch:
                count += await self._fold(records)
                records = []
        return count + (await self._fold(records) if records else 0)

    async def _run(self) -> None:
        while True:
            try:
                await self.catch_up()
                with contextlib.suppress(TimeoutError):
                    await self._wait_beyond(self._db.next_offset() - 1, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("embedded runner failed a batch; retrying")
                await asyncio.sleep(1.0)

    async def _fold(self, records: list[LoggedRecord]) -> int:
        changes: dict[str, bytes] = {}
        actions: list[Action] = []

        def lookup(key: str) -> bytes | None:
            return changes[key] if key in changes else self._db.get(key)

        for record in records:
            applied = apply_record(lookup, record.value)
            actions.extend(applied.actions)
            if applied.state is not None:
                changes[applied.key] = applied.state
        await asyncio.to_thread(self._db.commit, changes, actions, records[-1].offset + 1)
        for key, value in changes.items():
            self._on_change(key, value)
        self.folded += len(records)
        return len(records)


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
                self._db.give_up(action_id)
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
