"""The fold: handlers, duplicates, order independence of counts, last-seen by event time."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from schemas.event import CanonicalEvent, epoch_ms
from schemas.event_types import EventType
from streams.fold import fold, fold_all, initial_state
from streams.score import CLICK_POINTS, MAX_SCORE, OPEN_POINTS, engagement_score
from streams.state import SEEN_WINDOW, decode_state, encode_state

ADDRESS = "jane@example.com"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
FOLDED = [
    EventType.EMAIL_DELIVERED,
    EventType.EMAIL_OPENED,
    EventType.EMAIL_UNIQUE_OPENED,
    EventType.EMAIL_CLICKED,
]


def make_event(kind: EventType, n: int, seconds: int = 0) -> CanonicalEvent:
    return CanonicalEvent(
        event_id=f"{n:032x}",
        type=kind,
        source_event=kind.value.rsplit(".", 1)[-1],
        address=ADDRESS,
        occurred_at=BASE + timedelta(seconds=seconds),
        received_at=BASE,
        payload={"n": n},
    )


events_strategy = st.lists(
    st.tuples(st.sampled_from(FOLDED), st.integers(min_value=0, max_value=10**6)), max_size=40
).map(lambda pairs: [make_event(kind, n, seconds) for n, (kind, seconds) in enumerate(pairs)])


def test_each_handler_counts_its_event() -> None:
    kinds = [
        EventType.EMAIL_DELIVERED,
        EventType.EMAIL_DELIVERED,
        EventType.EMAIL_OPENED,
        EventType.EMAIL_CLICKED,
    ]
    state = fold_all(initial_state(ADDRESS), [make_event(k, n, n) for n, k in enumerate(kinds)])
    assert (state.delivered, state.opens, state.unique_opens, state.clicks) == (2, 1, 0, 1)
    assert state.last_delivered_at == epoch_ms(BASE + timedelta(seconds=1))
    assert state.last_clicked_at == epoch_ms(BASE + timedelta(seconds=3))
    assert state.score == OPEN_POINTS + CLICK_POINTS


def test_a_click_raises_the_score_more_than_an_open() -> None:
    opened = fold(initial_state(ADDRESS), make_event(EventType.EMAIL_OPENED, 1))
    clicked = fold(initial_state(ADDRESS), make_event(EventType.EMAIL_CLICKED, 1))
    assert 0 < opened.score < clicked.score


def test_score_is_capped_and_first_opens_are_not_counted_twice() -> None:
    assert engagement_score(opens=0, unique_opens=0, clicks=1000) == MAX_SCORE
    assert engagement_score(opens=3, unique_opens=2, clicks=0) == 3 * OPEN_POINTS


def test_unfolded_types_change_nothing() -> None:
    state = initial_state(ADDRESS)
    assert fold(state, make_event(EventType.UNKNOWN, 1)) is state


def test_seen_ids_are_bounded() -> None:
    events = [make_event(EventType.EMAIL_DELIVERED, n) for n in range(SEEN_WINDOW + 5)]
    state = fold_all(initial_state(ADDRESS), events)
    assert len(state.seen) == SEEN_WINDOW
    assert state.delivered == SEEN_WINDOW + 5


@given(events_strategy, st.data())
def test_a_duplicate_is_a_no_op(events: list[CanonicalEvent], data: st.DataObject) -> None:
    state = fold_all(initial_state(ADDRESS), events)
    if events:
        duplicate = data.draw(st.sampled_from(events))
        assert fold(state, duplicate) == state
    assert fold_all(state, events) == state


@given(events_strategy, st.randoms(use_true_random=False))
def test_order_does_not_change_counts_or_last_seen(events: list[CanonicalEvent], rng: random.Random) -> None:
    shuffled = list(events)
    rng.shuffle(shuffled)
    in_order = fold_all(initial_state(ADDRESS), events)
    reordered = fold_all(initial_state(ADDRESS), shuffled)
    assert replace(in_order, seen=()) == replace(reordered, seen=())


@given(events_strategy)
def test_last_seen_is_the_latest_occurred_at(events: list[CanonicalEvent]) -> None:
    state = fold_all(initial_state(ADDRESS), events)
    for kind, field in [
        (EventType.EMAIL_DELIVERED, state.last_delivered_at),
        (EventType.EMAIL_CLICKED, state.last_clicked_at),
    ]:
        times = [epoch_ms(e.occurred_at) for e in events if e.type is kind]
        assert field == (max(times) if times else None)


@given(events_strategy, st.integers(min_value=0, max_value=40))
def test_snapshot_then_continue_equals_full_replay(events: list[CanonicalEvent], cut: int) -> None:
    snapshot = decode_state(encode_state(fold_all(initial_state(ADDRESS), events[:cut])))
    assert fold_all(snapshot, events[cut:]) == fold_all(initial_state(ADDRESS), events)
