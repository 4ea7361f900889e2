"""The batch core: compact state, duplicates beside it, batching and crashes change nothing."""

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.batch import Batch, BatchFold
from domain.dedup import HORIZON_MS, SeenEvents
from domain.state import decode_state, offset_of, untracked
from eventlog.port import LoggedRecord
from schemas.brevo import canonicalize_all
from schemas.event import CanonicalEvent, encode_event
from tests.payloads import brevo_email

ADDRESS = "heavy@example.com"
START = datetime(2026, 3, 1, tzinfo=UTC)
KINDS = ("delivered", "opened", "click", "unique_opened", "soft_bounce", "delivered", "opened")


def event(n: int, minutes: int, kind: str | None = None, email: str = ADDRESS) -> CanonicalEvent:
    """A distinct real-shape event of `email`, `minutes` after START, in one of six campaigns."""
    raw = brevo_email(
        kind or KINDS[n % len(KINDS)],
        email=email,
        ts_epoch=int((START + timedelta(minutes=minutes)).timestamp() * 1000),
        camp_id=100 + n % 6,
        **{"message-id": f"m-{n}", "campaign name": f"Campaign {n % 6}"},
    )
    return canonicalize_all(raw, START)[0]


def records(events: Sequence[CanonicalEvent], first: int = 0) -> list[LoggedRecord]:
    return [LoggedRecord(0, first + n, e.key.encode(), encode_event(e), 0) for n, e in enumerate(events)]


class Store:
    """A key-value store as a runtime keeps states and ids, fed batch by batch."""

    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}
        self.seen: dict[str, bytes] = {}
        self.actions: list[str] = []

    def fold(self, batch_records: Iterable[LoggedRecord]) -> Batch:
        folder = BatchFold(self.states.get, self.seen.get)
        folder.add_all(batch_records)
        batch = folder.take()
        self.write(batch, states=True, seen=True)
        return batch

    def write(self, batch: Batch, *, states: bool, seen: bool) -> None:
        if states:
            self.states.update(batch.states)
        if seen:
            self.seen.update(batch.seen)
        self.actions.extend(placed.action.action_id for placed in batch.actions)


def fold_in_batches(all_records: Sequence[LoggedRecord], size: int) -> Store:
    store = Store()
    for start in range(0, len(all_records), size):
        store.fold(all_records[start : start + size])
    return store


def test_a_customer_with_5000_events_stays_under_2kb_and_still_drops_its_recent_duplicates() -> None:
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    log: list[CanonicalEvent] = []
    distinct = 0
    for n in range(5000):
        minutes = n // 2  # about 42 hours of event time
        if n % 10 == 9:  # a Brevo retry of an event of the last few hours
            log.append(rng.choice(log[-300:]))
        else:
            log.append(event(n, minutes))
            distinct += 1
    store = fold_in_batches(records(log), 500)
    encoded = untracked(store.states[ADDRESS])
    state = decode_state(encoded)
    counts = state.email_channel
    folded = counts.delivered + counts.opens + counts.clicks + counts.unique_opens + counts.soft_bounces

    assert len(encoded) < 2048, len(encoded)
    assert folded == distinct
    newest = max(e.occurred_at for e in log)
    recent = [e for e in log if newest - e.occurred_at <= timedelta(hours=11)]
    assert len(recent) > 1000
    for n, duplicate in enumerate(rng.sample(recent, 200)):  # any of its last hours, retried once more
        again = store.fold(records([duplicate], first=len(log) + n))
        assert again.folded == 0
        assert again.duplicates == 1
    assert decode_state(store.states[ADDRESS]) == state
    kept = SeenEvents.decode(store.seen[ADDRESS])
    horizon = timedelta(milliseconds=HORIZON_MS)
    assert len(kept.entries) == len({e.event_id for e in log if newest - e.occurred_at <= horizon})
    assert len(kept.entries) < distinct  # the ids of the horizon, not of the whole history


def test_ids_older_than_the_horizon_are_forgotten_with_their_power_to_drop_a_duplicate() -> None:
    seen = SeenEvents()
    seen.add("a" * 32, at=0, offset=0)
    seen.add("b" * 32, at=HORIZON_MS + 1, offset=1)
    assert not seen.is_duplicate("a" * 32, offset=2)  # left the horizon: a retry this late counts
    assert seen.is_duplicate("b" * 32, offset=2)
    assert not seen.is_duplicate("b" * 32, offset=1)  # the record that was folded is not its own duplicate
    decoded = SeenEvents.decode(seen.encode())
    assert list(decoded.entries) == [int("b" * 32, 16)]
    assert decoded.is_duplicate("b" * 32, offset=2)


mixed_logs = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 3), st.booleans()), min_size=1, max_size=60
).map(
    lambda rows: [
        event(n, minutes=n * 7, email=f"c{customer}@example.com")
        if not again or n == 0
        else event(n - 1, minutes=(n - 1) * 7, email=f"c{customer}@example.com")
        for n, (_, customer, again) in enumerate(rows)
    ]
)


@settings(max_examples=60, deadline=None)
@given(mixed_logs, st.lists(st.integers(1, 60), min_size=1, max_size=6))
def test_how_the_log_is_cut_into_batches_changes_nothing(log: list[CanonicalEvent], cuts: list[int]) -> None:
    whole = fold_in_batches(records(log), len(log))
    store = Store()
    all_records = records(log)
    start = 0
    for cut in [*sorted(cuts), len(all_records)]:
        store.fold(all_records[start:cut])
        start = max(start, cut)
    assert store.states == whole.states
    assert sorted(store.actions) == sorted(whole.actions)


@settings(max_examples=60, deadline=None)
@given(mixed_logs, st.integers(0, 60), st.sampled_from(["states only", "ids only", "nothing"]))
def test_a_crash_between_writes_then_a_reread_counts_every_event_once(
    log: list[CanonicalEvent], cut: int, reached: str
) -> None:
    """A batch whose writes only partly reached the store, then read again, folds as if nothing happened."""
    all_records = records(log)
    whole = fold_in_batches(all_records, len(all_records))
    store = Store()
    store.fold(all_records[:cut])
    folder = BatchFold(store.states.get, store.seen.get)
    folder.add_all(all_records[cut:])
    store.write(folder.take(), states=reached == "states only", seen=reached == "ids only")
    store.fold(all_records)  # the crash: everything since the last commit (here, since 0) comes again

    assert {k: untracked(v) for k, v in store.states.items()} == {
        k: untracked(v) for k, v in whole.states.items()
    }
    assert set(store.actions) == set(whole.actions)  # re-published at worst, never lost


def test_every_stored_state_carries_the_offset_of_its_last_event() -> None:
    log = [event(0, 0), event(1, 1, email="other@example.com"), event(2, 2)]
    store = fold_in_batches(records(log), 10)
    assert offset_of(store.states[ADDRESS]) == 2
    assert offset_of(store.states["other@example.com"]) == 1
    again = store.fold(records(log))
    assert (again.refolds, again.folded, again.states) == (3, 0, {})
