"""The embedded runner and the embedded replay use the state file off the event loop.

Every SQLite statement on the state file runs on a thread other than the loop's: a large fill, fold or
commit never stalls the requests the same loop serves. Checked by the thread each statement ran on,
not by timing.
"""

import threading
from pathlib import Path

import pytest

from eventlog.port import LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from replay import embedded as embedded_replay
from streams.embedded import EmbeddedRunner, StateDb
from tests.fixtures.history import HERE, logged, read_log
from tests.processes import eventually


class TracedStateDb(StateDb):
    """A state file that notes, once it is open, the thread each SQLite statement runs on."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.statements: list[tuple[int, str]] = []
        self._db.set_trace_callback(self._note)

    def _note(self, statement: str) -> None:
        self.statements.append((threading.get_ident(), statement))

    def ran_on(self, thread: int) -> list[str]:
        return [statement for ident, statement in self.statements if ident == thread]


async def history_log(path: Path) -> SqliteEventLog:
    """An embedded log of the fixture history (some 600 events of many customers), read in pages of 50."""
    log = SqliteEventLog(path, page_size=50)
    await log.start()
    records = logged(read_log(HERE / "log_v1.jsonl"))
    await log.append([LogRecord(record.key, record.value) for record in records])
    return log


async def test_a_replay_and_a_verify_run_no_statement_on_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # tiny fills and few working copies: many fills, and stored states read back between pages
    monkeypatch.setattr(embedded_replay, "FILL_KEYS", 3)
    monkeypatch.setattr(embedded_replay, "KEEP", 5)
    log = await history_log(tmp_path / "log.db")
    db = TracedStateDb(tmp_path / "state.db")
    try:
        await embedded_replay.replay_embedded(log, db, ReadStart())
        verdict = await embedded_replay.verify_embedded(log, db)
    finally:
        db.close()
        await log.stop()
    assert verdict.equal
    statements = " | ".join(statement for _, statement in db.statements)
    for done in ("INSERT INTO versions", "SELECT value FROM state_rows", "UPDATE live SET version"):
        assert done in statements
    assert db.ran_on(threading.get_ident()) == []


async def test_the_runner_folds_commits_and_polls_with_no_statement_on_the_loop(tmp_path: Path) -> None:
    log = await history_log(tmp_path / "log.db")
    head = (await log.head())[0]
    db = TracedStateDb(tmp_path / "state.db")

    async def ignore_version(_version: int, _states: list[tuple[str, bytes]]) -> None:
        return None

    runner = EmbeddedRunner(log, db, lambda _key, _value: None, ignore_version, batch=100)
    await runner.start()
    try:

        async def statements_since_folded() -> list[str]:
            return [statement for _, statement in db.statements] if runner.folded == head else []

        folded = await eventually(statements_since_folded, bool, within=60)

        async def polled_again() -> str:
            return " | ".join(statement for _, statement in db.statements[len(folded) :])

        # all folded, the runner goes on asking the state file whether to reload and where it is
        await eventually(
            polled_again, lambda since: "FROM live" in since and "FROM versions" in since, within=60
        )
    finally:
        await runner.stop()
        db.close()
        await log.stop()
    assert db.ran_on(threading.get_ident()) == []
