"""`tajo-events dlq` on the embedded log: dead letters are rows of the state file (`streams.embedded`).

Events the fold set aside are rows of `dead_events`; a retry appends the event to the log again (the
running fold folds it, once: `domain.dead_letters`) and then stamps the row, so a second retry does
nothing. Actions the effector gave up on are the outbox's rows with `done = -1`; a retry puts the
action back in the outbox (`done = 0`), where the running effector takes it.
"""

import sqlite3
from pathlib import Path

from domain.dead_letters import resubmission_key, resubmitted_copy
from eventlog.dead_letters import DeadEntry
from eventlog.port import LogRecord
from eventlog.sqlite import SqliteEventLog, wall_clock_ms
from streams.embedded import StateDb

_EVENTS = (
    "SELECT seq, at_ms, error_type, error, log_partition, log_offset, address, value, retried_at_ms"
    " FROM dead_events"
)
_ACTIONS = (
    "SELECT seq, given_up_at_ms, error, action_id, value, retried_at_ms, done FROM actions"
    " WHERE done = -1 OR retried_at_ms IS NOT NULL"
)


class EmbeddedDeadLetters:
    """The dead letters of the embedded log in a data folder (its `log.db` and `state.db`).

    Its reads are short queries of a local file, made on the loop (a command, not a server).
    """

    def __init__(self, log_path: Path, state_path: Path) -> None:
        self._log_path = log_path
        StateDb(state_path).close()  # creates the tables, and brings an older file up to date
        self._db = sqlite3.connect(state_path, isolation_level=None, timeout=30.0)

    def close(self) -> None:
        """Closes the state file."""
        self._db.close()

    async def entries(self) -> list[DeadEntry]:
        """Every dead letter, events then actions, each oldest first."""
        events = [_event(row) for row in self._db.execute(_EVENTS + " ORDER BY seq")]
        actions = [_action(row) for row in self._db.execute(_ACTIONS + " ORDER BY seq")]
        return events + actions

    async def entry(self, entry_id: str) -> DeadEntry | None:
        """One dead letter by its id (`event:<n>` or `action:<n>`), or None."""
        kind, _, number = entry_id.partition(":")
        if not number.isdigit():
            return None
        if kind == "event":
            row = self._db.execute(_EVENTS + " WHERE seq = ?", (int(number),)).fetchone()
            return None if row is None else _event(row)
        if kind == "action":
            row = self._db.execute(_ACTIONS + " AND seq = ?", (int(number),)).fetchone()
            return None if row is None else _action(row)
        return None

    async def retry(self, entry: DeadEntry) -> bool:
        """Re-submits a dead letter not retried yet; False when it was retried already (nothing done)."""
        if entry.retried_at_ms is not None:
            return False
        number = int(entry.id.partition(":")[2])
        if entry.kind == "action":
            changed = self._db.execute(
                "UPDATE actions SET done = 0, retried_at_ms = ? WHERE seq = ? AND done = -1",
                (wall_clock_ms(), number),
            )
            return changed.rowcount == 1
        log = SqliteEventLog(self._log_path)
        await log.start()
        try:
            await log.append([LogRecord(resubmission_key(entry.value), resubmitted_copy(entry.value))])
        finally:
            await log.stop()
        # Stamped after the append: a crash in between leaves it to retry again, and the fold drops
        # the second copy as a duplicate of the first.
        self._db.execute(
            "UPDATE dead_events SET retried_at_ms = ? WHERE seq = ? AND retried_at_ms IS NULL",
            (wall_clock_ms(), number),
        )
        return True


def _event(row: tuple[object, ...]) -> DeadEntry:
    seq, at_ms, error_type, error, partition, offset, address, value, retried = row
    return DeadEntry(
        id=f"event:{seq}",
        kind="event",
        at_ms=_opt_int(at_ms),
        error_type=str(error_type),
        error=str(error),
        source_topic="log.db",
        source_partition=_opt_int(partition),
        source_offset=_opt_int(offset),
        key=str(address or "").encode(),
        value=bytes(value),  # type: ignore[call-overload]  # a BLOB column
        retried_at_ms=_opt_int(retried),
    )


def _action(row: tuple[object, ...]) -> DeadEntry:
    seq, at_ms, error, action_id, value, retried, done = row
    error_type, _, message = str(error or "").partition(": ")
    return DeadEntry(
        id=f"action:{seq}",
        kind="action",
        at_ms=_opt_int(at_ms),
        error_type=error_type or "unknown",
        error=message,
        source_topic="outbox",
        source_partition=None,
        source_offset=None,
        key=str(action_id).encode(),
        value=bytes(value),  # type: ignore[call-overload]  # a BLOB column
        retried_at_ms=_opt_int(retried) if done != -1 else None,
    )


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) else None
