"""A log written by an earlier version replays to the very same projections, byte for byte.

`tests/fixtures/log_v1.jsonl` holds the records schema version 1 of the ingester wrote for a varied
history of Brevo traffic (`tests.fixtures.history`); `projections.json` is what that version's replay
made of it. Every later version must replay the old log, and write a new log of the same traffic,
to exactly those bytes: changing how an event is parsed must never silently rewrite history.
"""

from pathlib import Path

import pytest

from eventlog.port import LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from projections.store import ReadModel
from replay.embedded import replay_embedded
from streams.embedded import StateDb
from tests.fixtures.history import (
    HERE,
    current_records,
    logged,
    projection_bytes,
    projections_of,
    read_log,
)

EXPECTED = (HERE / "projections.json").read_bytes()
OLD_LOGS = sorted(HERE.glob("log_v*.jsonl"))


def test_there_is_a_fixture_log_of_schema_version_1() -> None:
    assert HERE / "log_v1.jsonl" in OLD_LOGS
    assert len(read_log(HERE / "log_v1.jsonl")) > 600


@pytest.mark.parametrize("path", OLD_LOGS, ids=lambda p: p.name)
def test_an_old_log_replays_to_the_committed_projections(path: Path) -> None:
    assert projection_bytes(projections_of(read_log(path))) == EXPECTED


def test_todays_ingester_writes_a_log_that_replays_to_the_same_projections() -> None:
    assert projection_bytes(projections_of(current_records())) == EXPECTED


async def test_the_embedded_replay_of_the_old_log_gives_the_committed_projections(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.db")
    await log.start()
    db = StateDb(tmp_path / "state.db")
    try:
        records = logged(read_log(HERE / "log_v1.jsonl"))
        await log.append([LogRecord(record.key, record.value) for record in records])
        await replay_embedded(log, db, ReadStart())
        assert projection_bytes(ReadModel.of(db.load())) == EXPECTED
    finally:
        db.close()
        await log.stop()
