"""The embedded state file's versions: the switch rule, the actions a replay queues, the old layout."""

import sqlite3
from pathlib import Path

from domain.actions import Action, ActionKind, make_action
from domain.batch import Batch, PlacedAction
from streams.embedded import StateDb, VersionChanged


def batch(states: dict[str, bytes], next_offset: int, actions: list[Action] | None = None) -> Batch:
    placed = [PlacedAction(0, next_offset - 1, a) for a in actions or []]
    return Batch(states=states, actions=placed, next_offsets={0: next_offset})


def action(n: int) -> Action:
    return make_action(ActionKind.SMS_HELP, "+33612345678", f"event-{n}", n)


def test_a_new_version_becomes_live_only_when_it_has_folded_as_far_as_the_live_one(tmp_path: Path) -> None:
    db = StateDb(tmp_path / "state.db")
    db.commit(batch({"a": b"live-a"}, 10, []))
    version = db.create_version(0)
    db.fill(version, batch({"a": b"new-a"}, 8))
    assert not db.switch(version, [])
    assert db.live_version() == 0
    assert db.get("a") == b"live-a"

    db.fill(version, batch({"b": b"new-b"}, 12))
    tail = [(9, action(9)), (10, action(10)), (11, action(11))]
    assert db.switch(version, tail)
    assert db.live_version() == version
    assert db.load() == [("a", b"new-a"), ("b", b"new-b")]
    assert db.next_offset() == 12
    # the live fold had acted up to offset 10: only the events at 10 and 11 get their actions now
    assert [a for a, _ in db.pending_actions()] == [action(10).action_id, action(11).action_id]
    assert list(db.states(0)) == []  # the old version is gone
    db.close()


def test_a_runner_commit_on_a_version_that_is_no_longer_live_writes_nothing(tmp_path: Path) -> None:
    runner_side = StateDb(tmp_path / "state.db")
    replay_side = StateDb(tmp_path / "state.db")
    runner_side.commit(batch({"a": b"1"}, 1, []))
    version = replay_side.create_version(0)
    replay_side.fill(version, batch({"a": b"rebuilt"}, 1))
    assert replay_side.switch(version, [])
    try:
        runner_side.commit(batch({"a": b"2"}, 2, [action(1)]))
    except VersionChanged:
        pass
    else:
        raise AssertionError("a commit on a dropped version was taken")
    assert replay_side.get("a") == b"rebuilt"
    assert replay_side.pending_actions() == []
    assert runner_side.load() == [("a", b"rebuilt")]
    assert runner_side.version == version
    runner_side.close()
    replay_side.close()


def test_a_state_file_from_before_versions_is_kept_as_version_zero(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE states (key TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE position (id INTEGER PRIMARY KEY CHECK (id = 0), next_offset INTEGER NOT NULL);
        INSERT INTO states VALUES ('a', x'01'), ('b', x'02');
        INSERT INTO position VALUES (0, 7);
        """
    )
    old.commit()
    old.close()
    db = StateDb(path)
    assert db.live_version() == 0
    assert db.load() == [("a", b"\x01"), ("b", b"\x02")]
    assert db.next_offset() == 7
    db.close()
