"""The projections folded straight from the log for the page: timelines, activity, the overview."""

import random
from collections import Counter

import orjson
from hypothesis import given
from hypothesis import strategies as st

from eventlog.port import LoggedRecord
from projections.activity import MINUTE_MS, WINDOW_MINUTES, Activity
from projections.log_tail import LogTail
from projections.overview import ActionCounts, FoldPosition, ServiceHealth, Snapshot, overview
from projections.timeline import TimelineEntry, Timelines, timeline_view
from schemas.brevo import canonicalize_all
from schemas.event import encode_event
from tests.fold_helpers import RECEIVED
from tests.payloads import Raw, seed_email

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def entry(at: int, n: int, kind: str = "email.opened") -> TimelineEntry:
    return TimelineEntry(at, f"{n:032x}", kind, None, None, None)


entries = st.lists(
    st.builds(entry, st.integers(0, 40), st.integers(0, 80)), max_size=120, unique_by=lambda e: e.event_id
)


def folded(window: int, items: list[TimelineEntry]) -> list[TimelineEntry]:
    timelines = Timelines(window)
    for item in items:
        timelines.add("a@example.com", item)
    return timelines.of("a@example.com")


@given(entries, st.randoms())
def test_a_timeline_is_the_same_whatever_the_order_of_its_events(
    items: list[TimelineEntry], rnd: random.Random
) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert folded(10, items) == folded(10, shuffled)


@given(entries)
def test_a_timeline_keeps_the_latest_events_newest_first_each_once(items: list[TimelineEntry]) -> None:
    kept = folded(10, items + items[: len(items) // 2])  # some events twice, as a Brevo retry
    expected = sorted(items, key=lambda e: (e.at, e.event_id), reverse=True)[:10]
    assert kept == expected


def test_a_timeline_merges_an_email_and_its_phone_and_stays_bounded() -> None:
    timelines = Timelines(3)
    timelines.add("a@example.com", entry(1, 1))
    timelines.add("+33600000000", entry(2, 2, "sms.delivered"))
    timelines.add("a@example.com", entry(3, 3))
    timelines.add("+33600000000", entry(4, 3))  # the same event id seen under both: shown once
    merged = timelines.of("a@example.com", "+33600000000")
    assert [e.event_id for e in merged] == [f"{3:032x}", f"{2:032x}", f"{1:032x}"]
    view = timeline_view("a@example.com", merged)
    assert view.events[0].at == "1970-01-01T00:00:00.004Z"
    assert timelines.of("nobody@example.com") == []


minutes = st.lists(
    st.tuples(st.sampled_from(["email.opened", "sms.delivered"]), st.integers(0, 150 * MINUTE_MS)),
    max_size=80,
)


@given(minutes, st.randoms())
def test_activity_is_the_same_whatever_the_order_of_the_records(
    records: list[tuple[str, int]], rnd: random.Random
) -> None:
    one, other = Activity(), Activity()
    shuffled = list(records)
    rnd.shuffle(shuffled)
    for kind, at in records:
        one.add(kind, at)
    for kind, at in shuffled:
        other.add(kind, at)
    assert one == other


@given(minutes)
def test_activity_counts_the_last_hour_by_minute_and_everything_in_total(
    records: list[tuple[str, int]],
) -> None:
    activity = Activity()
    for kind, at in records:
        activity.add(kind, at)
    assert activity.totals == Counter(kind for kind, _ in records)
    now = max((at for _, at in records), default=0)
    window = activity.window(now)
    assert len(window) == WINDOW_MINUTES
    first = now // MINUTE_MS - WINDOW_MINUTES + 1
    in_window = Counter(kind for kind, at in records if at // MINUTE_MS >= first)
    shown: Counter[str] = Counter()
    for _, counts in window:
        shown.update(counts)
    assert shown == in_window
    assert len(activity.per_minute) <= WINDOW_MINUTES


def _records(*raws: Raw) -> list[LoggedRecord]:
    events = [event for raw in raws for event in canonicalize_all(raw, RECEIVED)]
    return [
        LoggedRecord(0, offset, event.key.encode(), encode_event(event), T0 + offset * 1000)
        for offset, event in enumerate(events)
    ]


def test_the_log_tail_folds_timelines_activity_and_unknown_names_once() -> None:
    records = _records(
        seed_email("delivered", "jane@example.com", camp_id=45),
        seed_email(
            "clicked", "jane@example.com", camp_id=45, ts=1640995300, link="https://x.example/rewards"
        ),
        {"event": "mystery", "email": "jane@example.com", "ts": 1640995400},
    )
    tail = LogTail()
    tail.apply(records)
    tail.apply(records[1:])  # read again after a reconnection: skipped by position
    assert tail.activity.totals == {"email.delivered": 1, "email.clicked": 1, "unknown": 1}
    assert tail.activity.unknown_names == {"mystery": 1}
    assert tail.activity.last_appended_ms == T0 + 2000
    timeline = tail.timelines.of("jane@example.com")
    assert [e.type for e in timeline] == ["unknown", "email.clicked", "email.delivered"]
    assert timeline[1].link == "https://x.example/rewards"
    assert timeline[1].campaign == "45"
    assert tail.positions == {0: 3}


def test_the_log_tail_counts_a_record_that_is_no_event_and_goes_on() -> None:
    tail = LogTail()
    good = _records(seed_email("delivered", "jane@example.com"))[0]
    tail.apply([LoggedRecord(0, 0, b"k", b"not json", T0), good._replace(offset=1)])
    assert tail.undecodable == 1
    assert tail.activity.totals == {"email.delivered": 1}


def _snapshot(activity: Activity, now_ms: int, threshold_s: float = 60.0) -> Snapshot:
    return Snapshot(
        now_ms=now_ms,
        activity=activity,
        fold=[FoldPosition(0, 10, 7), FoldPosition(1, 5, None)],
        actions=ActionCounts(3, 1, "since start"),
        services=[ServiceHealth("ingester", "ok", "fine")],
        silence_threshold_s=threshold_s,
        projection_version=2,
    )


def test_the_overview_says_brevo_is_silent_past_the_threshold_and_gives_the_lag() -> None:
    activity = Activity()
    activity.add("email.opened", T0)
    activity.add("email.opened", T0 + 500)
    activity.add("sms.delivered", T0 + MINUTE_MS)
    fresh = overview(_snapshot(activity, T0 + MINUTE_MS + 30_000))
    assert not fresh.brevo.silent
    assert fresh.brevo.last_event_at == "2026-01-01T00:01:00Z"
    assert fresh.last_hour_totals == {"email.opened": 2, "sms.delivered": 1}
    assert fresh.last_hour[-2].counts == {"email.opened": 2}
    assert [(p.partition, p.lag) for p in fresh.fold] == [(0, 3), (1, None)]
    assert (fresh.actions.done, fresh.actions.dead_lettered) == (3, 1)
    late = overview(_snapshot(activity, T0 + 2 * MINUTE_MS))
    assert late.brevo.silent
    assert late.brevo.silent_for_s == 60.0
    assert overview(_snapshot(Activity(), T0)).brevo.silent  # nothing ever came
    hour_later = overview(_snapshot(activity, T0 + 90 * MINUTE_MS))
    assert hour_later.last_hour_totals == {}
    assert hour_later.totals == {"email.opened": 2, "sms.delivered": 1}


def test_the_overview_serializes_as_documented() -> None:
    body = overview(_snapshot(Activity(), T0)).model_dump(mode="json")
    assert orjson.loads(orjson.dumps(body))["projection_version"] == 2
    assert len(body["last_hour"]) == WINDOW_MINUTES
