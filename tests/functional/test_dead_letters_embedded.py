"""Dead letters on the embedded log, end to end: `serve` sets aside an event whose fold raises, folds the
events after it, `dlq list` and `dlq show` name it, and after the fix `dlq retry` folds it once.

The failure is the fault drill `TAJO_FOLD_FAIL_EVENT_IDS` (`streams.fold_faults`): the fold of the named
event changes the state and then raises, as a bug would; "the fix" is a restart without it.
"""

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from domain.actions import ActionKind, make_action
from domain.batch import Batch, PlacedAction
from domain.state import decode_state
from eventlog.port import LogRecord, ReadStart
from eventlog.sqlite import SqliteEventLog
from replay.embedded import replay_embedded, verify_embedded
from schemas.brevo import canonicalize_all
from schemas.event import encode_event
from streams.embedded import StateDb
from streams.fold_faults import FAULT_VARIABLE, fold_handlers
from tajo_events.embedded import LOG_FILE, STATE_FILE
from tests.functional.test_embedded_serve import Server
from tests.payloads import brevo_email
from tests.processes import eventually, run_command

ADDRESS = "dlq@example.com"
T0 = 1_767_225_600_000


def delivered(n: int) -> dict[str, Any]:
    return brevo_email("delivered", email=ADDRESS, ts_epoch=T0 + n * 1000, **{"message-id": f"dlq-{n}"})


def event_id_of(raw: dict[str, Any]) -> str:
    return canonicalize_all(raw, datetime.now(UTC))[0].event_id


async def view_of(server: Server) -> Any:
    status, view = await asyncio.to_thread(server.customer, ADDRESS)
    return view if status == 200 else None


def counts(view: Any) -> tuple[int, int] | None:
    return None if view is None else (view["channels"]["email"]["counts"]["delivered"], view["dead_lettered"])


async def dlq(data_dir: Path, *args: str) -> tuple[int, str]:
    code, out, err = await run_command(["dlq", *args], {"TAJO_DATA_DIR": str(data_dir)}, within=60)
    assert not err or code == 0, err
    return code, out


async def logged(data_dir: Path) -> list[Any]:
    """Every event in the embedded log, as JSON."""
    log = SqliteEventLog(data_dir / LOG_FILE)
    await log.start()
    try:
        return [orjson.loads(record.value) async for record in log.read(ReadStart())]
    finally:
        await log.stop()


async def test_a_failing_event_is_dead_lettered_and_a_retry_after_the_fix_folds_it_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    failing = delivered(1)
    failing_id = event_id_of(failing)
    server = Server(data, tmp_path / "serve.log", {FAULT_VARIABLE: failing_id}).start()
    try:
        for n in range(4):  # offsets 0..3; the event at offset 1 fails
            assert (await asyncio.to_thread(server.post, failing if n == 1 else delivered(n)))[0] == 200
        view = await eventually(lambda: view_of(server), lambda v: counts(v) == (3, 1), within=60)
        assert counts(view) == (3, 1)  # the events after it are folded; the state says one is set aside
    finally:
        server.stop()

    code, listing = await dlq(data, "list")
    assert code == 0
    lines = [line.split("\t") for line in listing.splitlines() if line.startswith("event:")]
    assert len(lines) == 1
    entry_id, kind, _, status, summary = lines[0]
    assert (kind, status) == ("event", "dead")
    assert summary.startswith("InjectedFoldFault: ")
    code, shown = await dlq(data, "show", entry_id)
    entry = orjson.loads(shown)
    assert entry["source"] == {"topic": "log.db", "partition": 0, "offset": 1}
    assert entry["record"]["event_id"] == failing_id
    assert entry["error_type"] == "InjectedFoldFault"
    assert entry["at_ms"] > 0

    fixed = Server(data, tmp_path / "serve.log").start()  # the fix: the same data, no fault
    try:
        assert counts(await view_of(fixed)) == (3, 1)
        code, out = await dlq(data, "retry", entry_id)
        assert (code, out) == (0, f"{entry_id}: re-submitted to the log\n")
        await eventually(lambda: view_of(fixed), lambda v: counts(v) == (4, 0), within=60)
        code, out = await dlq(data, "retry", entry_id)
        assert code == 0
        assert "retried already" in out
        assert (await dlq(data, "list", "--pending"))[1].endswith("0 dead letter(s)\n")
        # A later event is folded on top: had the retry folded twice, it would show 6.
        assert (await asyncio.to_thread(fixed.post, delivered(9)))[0] == 200
        view = await eventually(lambda: view_of(fixed), lambda v: counts(v) == (5, 0), within=60)
        assert counts(view) == (5, 0)
    finally:
        fixed.stop()
    code, out, _ = await run_command(["replay", "--verify"], {"TAJO_DATA_DIR": str(data)}, within=60)
    assert code == 0, out  # the live state is a rebuild of the log: the retried event counted once
    marked = [
        (e["event_id"], e.get("resubmitted")) for e in await logged(data) if e["event_id"] == failing_id
    ]
    assert marked == [(failing_id, None), (failing_id, True)]  # the original, then the copy marked


async def test_an_unknown_id_is_named_with_exit_status_1(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = Server(data, tmp_path / "serve.log").start()
    server.stop()
    assert await dlq(data, "show", "event:42") == (1, "dlq: no dead letter event:42\n")
    assert await dlq(data, "retry", "action:7") == (1, "action:7: no such dead letter\n")
    assert await dlq(data, "list") == (0, "0 dead letter(s)\n")


async def test_an_action_given_up_on_is_listed_with_why_and_a_retry_puts_it_back_in_the_outbox_once(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    Server(data, tmp_path / "serve.log").start().stop()  # makes the log and the state file
    db = StateDb(data / STATE_FILE)
    try:
        action = make_action(ActionKind.SMS_HELP, "+33612345678", "e" * 32, T0, phone="+33612345678")
        batch = Batch(actions=[PlacedAction(0, 0, action)])
        db.commit(batch)
        db.give_up(action.action_id, "BrevoPermanentError: Brevo answered 400: invalid phone")
        assert db.pending_actions() == []
    finally:
        db.close()
    code, listing = await dlq(data, "list")
    assert code == 0
    entry_id, kind, _, status, summary = listing.splitlines()[0].split("\t")
    assert (kind, status, summary) == (
        "action",
        "dead",
        "BrevoPermanentError: Brevo answered 400: invalid phone",
    )
    shown = orjson.loads((await dlq(data, "show", entry_id))[1])
    assert shown["record"]["action_id"] == action.action_id
    assert await dlq(data, "retry", "--all") == (0, f"{entry_id}: re-submitted to the actions\n")
    assert (await dlq(data, "retry", entry_id))[1].startswith(f"{entry_id}: retried already at ")
    db = StateDb(data / STATE_FILE)
    try:
        assert [action_id for action_id, _ in db.pending_actions()] == [action.action_id]
    finally:
        db.close()


async def test_a_replay_sets_aside_what_fails_to_fold_and_keeps_each_dead_letter_once(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / LOG_FILE)
    await log.start()
    db = StateDb(tmp_path / STATE_FILE)
    events = [canonicalize_all(delivered(n), datetime.now(UTC))[0] for n in range(4)]
    try:
        await log.append([LogRecord(e.key.encode(), encode_event(e)) for e in events])
        failing = fold_handlers({FAULT_VARIABLE: events[2].event_id})
        for _ in range(2):  # a second replay finds the same dead letter: still one entry
            await replay_embedded(log, db, ReadStart(), handlers=failing)
        state = decode_state(dict(db.load())[ADDRESS])
        assert (state.email_channel.delivered, state.dead_letters) == (3, (events[2].event_id,))
        assert (await verify_embedded(log, db, handlers=failing)).equal
        assert not (await verify_embedded(log, db)).equal  # fixed, before the retry: the customer differs
    finally:
        db.close()
        await log.stop()
    assert (listing := await dlq(tmp_path, "list"))[0] == 0
    assert [line.split("\t")[:2] for line in listing[1].splitlines()[:-1]] == [["event:1", "event"]]
    assert orjson.loads((await dlq(tmp_path, "show", "event:1"))[1])["source"]["offset"] == 2
