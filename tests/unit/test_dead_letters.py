"""Dead letters in the batch core: an event whose fold raises is set aside, marked, and folds once later."""

from collections.abc import Sequence

import orjson
import pytest

from domain.batch import BatchFold
from domain.dead_letters import MAX_ERROR_CHARS, describe, resubmitted_copy
from domain.dedup import SeenEvents
from domain.events import FoldEvent as BatchFoldEvent
from domain.state import CustomerState, decode_state, encode_state
from eventlog.port import LoggedRecord
from schemas.event import CanonicalEvent, encode_event
from streams.fold_faults import FAULT_VARIABLE, InjectedFoldFault, fold_handlers
from tests.unit.test_batch_core import ADDRESS, Store, event, records

FAILING = event(1, 1, "delivered")
BEFORE = [event(0, 0, "delivered")]
AFTER = [event(n, n, "delivered") for n in range(2, 6)]


class FaultyStore(Store):
    """A store whose fold fails on the given event ids (as TAJO_FOLD_FAIL_EVENT_IDS makes it)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing: list[str] = []
        self.dead: list[tuple[int, str | None, str]] = []

    def fold_records(self, batch_records: Sequence[LoggedRecord]) -> None:
        handlers = fold_handlers({FAULT_VARIABLE: ",".join(self.failing)})
        folder = BatchFold(self.states.get, self.seen.get, handlers=handlers)
        folder.add_all(batch_records)
        batch = folder.take()
        self.write(batch, states=True, seen=True)
        self.dead += [(d.offset, d.event_id, d.error_type) for d in batch.dead]

    def state(self) -> CustomerState:
        return decode_state(self.states[ADDRESS])


def log_of(events: Sequence[CanonicalEvent]) -> list[LoggedRecord]:
    return records(events)


def test_a_failing_event_is_set_aside_and_the_events_after_it_are_folded() -> None:
    store = FaultyStore()
    store.failing = [FAILING.event_id]
    store.fold_records(log_of([*BEFORE, FAILING, *AFTER]))
    assert store.dead == [(1, FAILING.event_id, "InjectedFoldFault")]
    state = store.state()
    assert state.email_channel.delivered == 1 + len(AFTER)  # the handler's half change was undone
    assert state.dead_letters == (FAILING.event_id,)


def test_after_the_fix_a_resubmitted_event_folds_once_and_clears_the_mark() -> None:
    store = FaultyStore()
    store.failing = [FAILING.event_id]
    log = log_of([*BEFORE, FAILING, *AFTER])
    store.fold_records(log)
    store.failing = []
    retry = LoggedRecord(0, len(log), log[1].key, log[1].value, 0)
    again = LoggedRecord(0, len(log) + 1, log[1].key, log[1].value, 0)  # a second re-submission
    store.fold_records([retry, again])
    state = store.state()
    assert state.email_channel.delivered == 2 + len(AFTER)
    assert state.dead_letters == ()


def test_a_replay_after_the_fix_folds_the_event_once_and_drops_the_resubmission() -> None:
    log = log_of([*BEFORE, FAILING, *AFTER])
    log.append(LoggedRecord(0, len(log), log[1].key, log[1].value, 0))
    store = FaultyStore()
    store.fold_records(log)
    assert store.state().email_channel.delivered == 2 + len(AFTER)
    assert store.state().dead_letters == ()


DAYS_LATER = [event(n, 2 * 24 * 60 + n, "delivered") for n in range(6, 9)]  # past the 24 h horizon


def test_a_replay_after_the_fix_drops_a_resubmitted_copy_that_came_days_after_its_original() -> None:
    live = FaultyStore()
    live.failing = [FAILING.event_id]
    log = log_of([*BEFORE, FAILING, *AFTER, *DAYS_LATER])
    live.fold_records(log)
    live.failing = []  # the fix; then `dlq retry` puts the copy back, marked
    log.append(LoggedRecord(0, len(log), log[1].key, resubmitted_copy(log[1].value), 0))
    live.fold_records(log[-1:])
    folded_once = 2 + len(AFTER) + len(DAYS_LATER)
    assert live.state().email_channel.delivered == folded_once
    assert live.state().dead_letters == ()

    replay = FaultyStore()  # the same log from the start, the fix in the code
    replay.fold_records(log)
    assert replay.state().email_channel.delivered == folded_once
    assert replay.state() == live.state()


def test_a_replay_before_the_fix_sets_the_original_aside_again_and_folds_the_copy() -> None:
    log = log_of([*BEFORE, FAILING, *AFTER, *DAYS_LATER])
    log.append(LoggedRecord(0, len(log), log[1].key, resubmitted_copy(log[1].value), 0))
    replay = FaultyStore()
    replay.failing = [FAILING.event_id]
    replay.fold_records(log[:-1])
    replay.failing = []
    replay.fold_records(log[-1:])
    assert replay.state().email_channel.delivered == 2 + len(AFTER) + len(DAYS_LATER)
    assert replay.state().dead_letters == ()


def test_a_resubmitted_copy_is_the_event_marked_and_other_bytes_go_back_as_they_were() -> None:
    copy = orjson.loads(resubmitted_copy(encode_event(FAILING)))
    assert copy.pop("resubmitted") is True
    assert copy == orjson.loads(encode_event(FAILING))
    assert CanonicalEvent.model_validate_json(resubmitted_copy(encode_event(FAILING))).resubmitted
    assert resubmitted_copy(b"not json") == b"not json"
    assert resubmitted_copy(b"[1, 2]") == b"[1, 2]"


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_batching_does_not_change_what_a_failing_event_leaves(size: int) -> None:
    log = log_of([*BEFORE, FAILING, *AFTER, event(9, 9, "opened")])
    whole = FaultyStore()
    whole.failing = [FAILING.event_id]
    whole.fold_records(log)
    split = FaultyStore()
    split.failing = [FAILING.event_id]
    for start in range(0, len(log), size):
        split.fold_records(log[start : start + size])
    assert split.states == whole.states
    assert split.dead == whole.dead


def test_a_record_that_does_not_decode_is_set_aside_and_marked_in_its_customer_state() -> None:
    newer = orjson.loads(encode_event(FAILING)) | {"schema_version": 99}  # written by a newer ingester
    log = log_of([*BEFORE])
    log.append(LoggedRecord(0, 1, ADDRESS.encode(), orjson.dumps(newer), 0))
    log.append(LoggedRecord(0, 2, b"", b"not json at all", 0))
    log += records(AFTER, first=3)
    store = FaultyStore()
    store.fold_records(log)
    assert [(offset, event_id) for offset, event_id, _ in store.dead] == [(1, FAILING.event_id), (2, None)]
    assert {kind for _, _, kind in store.dead} == {"UndecodableEvent"}
    assert store.state().email_channel.delivered == 1 + len(AFTER)
    assert store.state().dead_letters == (FAILING.event_id,)


def test_a_record_whose_event_id_is_no_hex_digest_is_set_aside_and_stays_aside_on_a_refold() -> None:
    odd = orjson.loads(encode_event(FAILING)) | {"event_id": "not-hex"}  # not what the ingester writes
    log = log_of([*BEFORE])
    log.append(LoggedRecord(0, 1, ADDRESS.encode(), orjson.dumps(odd), 0))
    log += records(AFTER, first=2)
    store = FaultyStore()
    store.fold_records(log)
    assert [(offset, event_id, kind) for offset, event_id, kind in store.dead] == [
        (1, "not-hex", "ValueError")
    ]
    assert store.state().email_channel.delivered == 1 + len(AFTER)
    store.fold_records(log)  # the same records again (a restart before the commit): nothing raises
    assert store.state().email_channel.delivered == 1 + len(AFTER)


def test_an_injected_fault_raises_only_for_the_named_ids() -> None:
    handlers = fold_handlers({FAULT_VARIABLE: f" {FAILING.event_id} ,"})
    state = CustomerState(address=ADDRESS, kind="email", email=ADDRESS)
    folder = BatchFold(lambda _k: None, lambda _k: None)
    assert fold_handlers({}) is folder._handlers
    kind = FAILING.type
    with pytest.raises(InjectedFoldFault):
        handlers[kind](state, BatchFoldEvent.of(FAILING))
    assert handlers[kind](state, BatchFoldEvent.of(BEFORE[0])) == ()


def test_an_error_message_is_cut_and_named() -> None:
    kind, message = describe(ValueError("x" * 5_000))
    assert kind == "ValueError"
    assert len(message) == MAX_ERROR_CHARS


def test_a_discarded_id_is_no_duplicate_and_survives_encoding() -> None:
    seen = SeenEvents()
    assert seen.admit(FAILING.event_id, 1, 1)
    assert seen.admit(BEFORE[0].event_id, 1, 2)
    seen.discard(FAILING.event_id)
    decoded = SeenEvents.decode(seen.encode())
    assert decoded.admit(FAILING.event_id, 1, 3)
    assert not decoded.admit(BEFORE[0].event_id, 1, 4)


def test_old_states_without_dead_letters_decode() -> None:
    state = CustomerState(address=ADDRESS, kind="email")
    plain = orjson.loads(encode_state(state))
    del plain["dead_letters"]
    assert decode_state(orjson.dumps(plain)).dead_letters == ()


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_two_failures_and_a_duplicate_in_one_batch_leave_what_one_by_one_leaves(size: int) -> None:
    first, second = event(21, 21, "opened"), event(23, 23, "click")
    events = [event(20, 20, "delivered"), event(20, 20, "delivered"), first, event(22, 22, "delivered")]
    events += [second, event(24, 24, "opened"), event(25, 25, "soft_bounce")]
    log = log_of(events)
    batched = FaultyStore()
    batched.failing = [first.event_id, second.event_id]
    for start in range(0, len(log), size):
        batched.fold_records(log[start : start + size])
    state = batched.state()
    assert state.dead_letters == (first.event_id, second.event_id)
    assert (state.email_channel.delivered, state.email_channel.opens, state.email_channel.clicks) == (2, 1, 0)
    assert [offset for offset, _, _ in batched.dead] == [2, 4]


@pytest.mark.parametrize("checkpoint", [1, 2, 3])
def test_a_fold_taken_once_at_the_end_keeps_few_records_and_still_brings_a_failed_state_back(
    checkpoint: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = "other@example.com"
    mixed = [event(n, n, "delivered", email=other if n % 3 == 0 else ADDRESS) for n in range(12)]
    failing = event(20, 20, "opened")
    log = log_of([*mixed, failing, event(21, 21, "delivered"), event(22, 22, "clicked", email=other)])
    handlers = fold_handlers({FAULT_VARIABLE: failing.event_id})

    def fold_page_by_page() -> tuple[dict[str, bytes], int]:
        folder = BatchFold(lambda _key: None, lambda _key: None, handlers=handlers)  # as a replay folds
        most_kept = 0
        for record in log:
            folder.add_all([record])
            most_kept = max(most_kept, folder._kept)  # what the checkpoint bounds
        return folder.take().states, most_kept

    unbounded, kept_without = fold_page_by_page()
    monkeypatch.setattr("domain.batch.CHECKPOINT_RECORDS", checkpoint)
    bounded, kept_with = fold_page_by_page()
    assert bounded == unbounded  # the handler's half change undone from the checkpoint's state
    assert decode_state(bounded[ADDRESS]).dead_letters == (failing.event_id,)
    assert kept_without == len(log)
    assert kept_with <= checkpoint + 1
