"""The fold: each handler rule of the guide, duplicates, order, event time, and its properties."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.actions import ActionKind
from domain.dedup import HORIZON_MS
from domain.fold import fold_all, initial_state, step
from domain.score import CLICK_POINTS, MAX_SCORE, OPEN_POINTS, engagement_score, tier_for
from domain.state import decode_state, encode_state
from schemas.event import CanonicalEvent, epoch_ms
from schemas.event_types import EventType
from tests.fold_helpers import event_of, fold_log, run
from tests.payloads import brevo_email, brevo_sms, seed_email

ADDRESS = "jane@example.com"
PHONE = "+33612345678"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
FOLDED = [
    EventType.EMAIL_DELIVERED,
    EventType.EMAIL_OPENED,
    EventType.EMAIL_UNIQUE_OPENED,
    EventType.EMAIL_CLICKED,
    EventType.EMAIL_SOFT_BOUNCED,
    EventType.EMAIL_HARD_BOUNCED,
    EventType.EMAIL_SPAM,
    EventType.EMAIL_UNSUBSCRIBED,
    EventType.EMAIL_PROXY_OPENED,
]


def make_event(kind: EventType, n: int, seconds: int = 0) -> CanonicalEvent:
    return CanonicalEvent(
        event_id=f"{n:032x}",
        type=kind,
        source_event=kind.value.rsplit(".", 1)[-1],
        address=ADDRESS,
        occurred_at=BASE + timedelta(seconds=seconds),
        received_at=BASE,
        payload={"n": n, "email": ADDRESS},
    )


events_strategy = st.lists(
    st.tuples(st.sampled_from(FOLDED), st.integers(min_value=0, max_value=10**6)), max_size=30
).map(lambda pairs: [make_event(kind, n, seconds) for n, (kind, seconds) in enumerate(pairs)])


def at(ts: int) -> int:
    return ts * 1000


# -- delivered / opened / clicked


def test_delivered_opened_clicked_count_and_set_last_seen() -> None:
    state, _ = run(
        ADDRESS,
        seed_email("delivered", email=ADDRESS, ts=100),
        seed_email("delivered", email=ADDRESS, ts=50, **{"message-id": "m2"}),
        seed_email("opened", email=ADDRESS, ts=110),
        seed_email("clicked", email=ADDRESS, ts=120, link="https://shop.example/item"),
    )
    email = state.email_channel
    assert (email.delivered, email.opens, email.clicks) == (2, 1, 1)
    assert (email.last_delivered_at, email.last_opened_at, email.last_clicked_at) == (
        at(100),
        at(110),
        at(120),
    )
    assert state.score == OPEN_POINTS + CLICK_POINTS


def test_a_click_raises_the_score_more_than_an_open() -> None:
    opened, _ = run(ADDRESS, seed_email("opened", email=ADDRESS))
    clicked, _ = run(ADDRESS, seed_email("clicked", email=ADDRESS, link="https://x.example"))
    assert 0 < opened.score < clicked.score


def test_proxy_opens_are_counted_apart_and_do_not_raise_the_score() -> None:
    state, _ = run(
        ADDRESS, brevo_email("proxy_open", email=ADDRESS), brevo_email("unique_proxy_open", email=ADDRESS)
    )
    assert state.email_channel.proxy_opens == 2
    assert (state.email_channel.opens, state.score, state.email_channel.last_opened_at) == (0, 0, None)


def test_score_formula_cap_and_tiers() -> None:
    assert engagement_score(opens=0, unique_opens=0, clicks=1000) == MAX_SCORE
    assert engagement_score(opens=3, unique_opens=2, clicks=0) == 3 * OPEN_POINTS
    assert [tier_for(s) for s in (0, 1, 19, 20, 49, 50, 79, 80, 100)] == [
        "inactive", "bronze", "bronze", "silver", "silver", "gold", "gold", "platinum", "platinum",
    ]  # fmt: skip


def test_loyalty_tag_records_a_loyalty_engagement() -> None:
    state, actions = run(
        ADDRESS, brevo_email("opened", email=ADDRESS, tags=["loyalty-spring"], subject="Double points week")
    )
    assert state.loyalty_engagements == 1
    assert [(a.kind, a.data["activity"], a.data["campaign"]) for a in actions] == [
        (ActionKind.LOYALTY_ENGAGEMENT, "email_opened", "Double points week")
    ]
    untagged, none = run(ADDRESS, brevo_email("opened", email=ADDRESS))
    assert (untagged.loyalty_engagements, none) == (0, [])


def test_rewards_or_loyalty_click_records_a_rewards_page_visit() -> None:
    state, actions = run(
        ADDRESS,
        seed_email("clicked", email=ADDRESS, ts=10, link="https://tajo.example/rewards?x=1"),
        {
            **brevo_email("click", email="JANE@example.com", ts_epoch=20_000),
            "URL": "https://tajo.example/loyalty",
        },
        seed_email("clicked", email=ADDRESS, ts=30, link="https://tajo.example/shop"),
    )
    assert (state.rewards_visits, state.last_rewards_visit_at) == (2, 20_000)
    visits = [a for a in actions if a.kind is ActionKind.REWARDS_PAGE_VISIT]
    assert [v.data["referrer_url"] for v in visits] == [
        "https://tajo.example/rewards?x=1",
        "https://tajo.example/loyalty",
    ]


# -- bounces, spam, unsubscribe


def test_soft_bounce_counts_and_hard_bounce_marks_invalid_and_suggests_sms() -> None:
    state, actions = run(
        ADDRESS,
        seed_email("bounced", email=ADDRESS, ts=10, reason="mailbox full"),
        brevo_email("deferred", email=ADDRESS),
        seed_email("hard_bounced", email=ADDRESS, ts=20, reason="550 NoSuchUser"),
    )
    email = state.email_channel
    assert (email.soft_bounces, email.hard_bounces, email.invalid, email.invalid_reason) == (
        2,
        1,
        True,
        "550 NoSuchUser",
    )
    assert [(a.kind, a.data["channel"]) for a in actions] == [(ActionKind.ALTERNATIVE_CHANNEL, "sms")]


def test_invalid_email_and_blocked_are_hard_bounces() -> None:
    for name in ("invalid_email", "blocked", "hard_bounce"):
        state, _ = run(ADDRESS, brevo_email(name, email=ADDRESS, reason=name))
        assert state.email_channel.invalid, name


def test_spam_turns_marketing_off_and_raises_an_alert() -> None:
    state, actions = run(ADDRESS, brevo_email("complaint", email=ADDRESS, tags=["promo"]))
    assert (state.spam_reported, state.marketing_enabled) == (True, False)
    assert [(a.kind, a.data["campaign"]) for a in actions] == [(ActionKind.MARKETING_ALERT, "promo")]
    assert [(alert.kind, alert.campaign) for alert in state.alerts] == [("spam_report", "promo")]


def test_unsubscribe_turns_marketing_email_off() -> None:
    state, _ = run(ADDRESS, seed_email("unsubscribed", email=ADDRESS))
    assert (state.marketing_enabled, state.email_channel.unsubscribes) == (False, 1)


# -- SMS


def test_sms_delivered_and_failed_update_the_sms_channel() -> None:
    state, actions = run(
        PHONE,
        brevo_sms("delivered", date="x"),
        {"event": "sms_failed", "phone": PHONE, "reason": "unreachable", "ts": 1_900_000_000},
    )
    assert (state.sms.delivered, state.sms.failed, state.sms.failing, state.sms.failure_reason) == (
        1, 1, True, "unreachable",
    )  # fmt: skip
    assert actions == []  # no email known for this phone: nothing to suggest


def test_sms_failure_suggests_email_when_the_customer_has_one() -> None:
    contact = {"event": "contact_updated", "email": ADDRESS, "attributes": {"SMS": "33612345678"}, "ts": 100}
    state, actions = run(PHONE, contact, {"event": "sms_failed", "phone": PHONE, "reason": "x", "ts": 200})
    assert state.email == ADDRESS
    assert [(a.kind, a.data["channel"], a.data["email"]) for a in actions] == [
        (ActionKind.ALTERNATIVE_CHANNEL, "email", ADDRESS)
    ]


def test_sms_replies_stop_help_and_support() -> None:
    replies = [" STOP ", "unsubscribe", "Help", "INFO ", "Where is my order?"]
    raws = [
        {"event": "sms_reply", "phone": PHONE, "text": text, "ts": 100 + n} for n, text in enumerate(replies)
    ]
    state, actions = run(PHONE, *raws)
    assert [a.kind for a in actions] == [
        ActionKind.SMS_UNSUBSCRIBE, ActionKind.SMS_UNSUBSCRIBE, ActionKind.SMS_HELP, ActionKind.SMS_HELP,
        ActionKind.SUPPORT_MESSAGE,
    ]  # fmt: skip
    assert state.sms.subscribed is False
    assert [m.text for m in state.inbox] == ["Where is my order?"]


def test_brevo_shaped_sms_reply_is_understood() -> None:
    state, actions = run(PHONE, brevo_sms("reply", text="help"))
    assert [a.kind for a in actions] == [ActionKind.SMS_HELP]
    assert state.sms.replies == 1


# -- contacts


def test_contact_events_create_link_record_lists_and_delete() -> None:
    state, _ = run(
        ADDRESS,
        {"event": "contact_created", "email": ADDRESS, "phone": "+33 6 12 34 56 78", "ts": 10},
        {"event": "list_addition", "email": ADDRESS, "list_id": [7, 3], "ts": 20},
        {"event": "contact_updated", "email": ADDRESS, "list_id": [3, 9], "ts": 30},
    )
    assert (state.contact_known, state.phone, state.lists, state.deleted) == (True, PHONE, (3, 7, 9), False)
    deleted, _ = run(ADDRESS, {"event": "contact_deleted", "email": ADDRESS, "ts": 40})
    assert deleted.deleted


def test_an_sms_before_the_link_belongs_to_the_linked_customer() -> None:
    early_sms = brevo_sms("delivered")
    link = {
        "event": "contact_updated",
        "email": ADDRESS,
        "content": [{"SMS": "33612345678"}],
        "ts": 1_900_000_000,
    }
    phone_state, _ = run(PHONE, early_sms, link)
    email_state, _ = run(ADDRESS, early_sms, link)
    assert (phone_state.sms.delivered, phone_state.email) == (1, ADDRESS)
    assert email_state.phone == PHONE


def test_unknown_events_are_kept_but_not_folded() -> None:
    event = event_of(brevo_email("brand_new_event", email=ADDRESS))
    assert event.type is EventType.UNKNOWN
    state = initial_state(ADDRESS)
    assert step(state, event).state is state


# -- event time, duplicates


def test_state_changes_apply_by_event_time_not_arrival() -> None:
    # A delivery newer than a hard bounce clears it; an older one arriving late does not.
    late_old_delivery, _ = run(
        ADDRESS,
        brevo_email("hard_bounce", email=ADDRESS, ts_epoch=2000, reason="gone"),
        brevo_email("delivered", email=ADDRESS, ts_epoch=1000),
    )
    assert late_old_delivery.email_channel.invalid
    newer_delivery, _ = run(
        ADDRESS,
        brevo_email("hard_bounce", email=ADDRESS, ts_epoch=2000, reason="gone"),
        brevo_email("delivered", email=ADDRESS, ts_epoch=3000),
    )
    assert not newer_delivery.email_channel.invalid
    # A deletion older than a re-creation does not hide the contact.
    recreated, _ = run(
        ADDRESS,
        {"event": "contact_created", "email": ADDRESS, "ts": 300},
        {"event": "contact_deleted", "email": ADDRESS, "ts": 200},
    )
    assert not recreated.deleted
    # An SMS failure older than a delivery does not mark the phone failing.
    sms, _ = run(
        PHONE,
        {"event": "sms_delivered", "phone": PHONE, "ts": 300},
        {"event": "sms_failed", "phone": PHONE, "reason": "x", "ts": 200},
    )
    assert (sms.sms.failing, sms.sms.failed) == (False, 1)


def test_replayed_duplicates_change_nothing_and_ask_for_nothing() -> None:
    reply = {"event": "sms_reply", "phone": PHONE, "text": "HELP", "ts": 100}
    state, actions = run(PHONE, reply, reply, reply)
    assert (state.sms.replies, len(actions)) == (1, 1)


@given(events_strategy, st.data())
def test_a_duplicate_is_a_no_op(events: list[CanonicalEvent], data: st.DataObject) -> None:
    state, actions = fold_log(ADDRESS, events)
    newest = max((epoch_ms(e.occurred_at) for e in events), default=0)
    recent = [e for e in events if epoch_ms(e.occurred_at) >= newest - HORIZON_MS]
    if recent:  # a Brevo retry comes within hours of its original
        duplicates = data.draw(st.lists(st.sampled_from(recent), min_size=1, max_size=5))
        assert fold_log(ADDRESS, [*events, *duplicates]) == (state, actions)
    assert fold_log(ADDRESS, [*events, *recent]) == (state, actions)


def test_a_duplicate_older_than_the_horizon_counts_again() -> None:
    old = make_event(EventType.EMAIL_DELIVERED, 1)
    new = make_event(EventType.EMAIL_DELIVERED, 2, seconds=HORIZON_MS // 1000 + 1)
    state, _ = fold_log(ADDRESS, [old, new, old])
    assert state.email_channel.delivered == 3
    state, _ = fold_log(ADDRESS, [old, new, new])
    assert state.email_channel.delivered == 2


@given(events_strategy, st.randoms(use_true_random=False))
def test_order_does_not_change_counts_last_seen_or_statuses(
    events: list[CanonicalEvent], rng: random.Random
) -> None:
    shuffled = list(events)
    rng.shuffle(shuffled)
    in_order = fold_all(initial_state(ADDRESS), events)
    reordered = fold_all(initial_state(ADDRESS), shuffled)
    assert replace(in_order, alerts=()) == replace(reordered, alerts=())
    assert sorted(in_order.alerts, key=lambda a: a.alert_id) == sorted(
        reordered.alerts, key=lambda a: a.alert_id
    )


@given(events_strategy)
def test_last_seen_is_the_latest_occurred_at(events: list[CanonicalEvent]) -> None:
    state = fold_all(initial_state(ADDRESS), events)
    for kind, value in [
        (EventType.EMAIL_DELIVERED, state.email_channel.last_delivered_at),
        (EventType.EMAIL_CLICKED, state.email_channel.last_clicked_at),
    ]:
        times = [epoch_ms(e.occurred_at) for e in events if e.type is kind]
        assert value == (max(times) if times else None)


@given(events_strategy, st.integers(min_value=0, max_value=30))
def test_snapshot_then_continue_equals_full_replay(events: list[CanonicalEvent], cut: int) -> None:
    snapshot = decode_state(encode_state(fold_all(initial_state(ADDRESS), events[:cut])))
    assert fold_all(snapshot, events[cut:]) == fold_all(initial_state(ADDRESS), events)


@given(events_strategy, st.sampled_from(FOLDED))
def test_step_leaves_the_state_it_was_given_as_it_was(events: list[CanonicalEvent], kind: EventType) -> None:
    state = fold_all(initial_state(ADDRESS), events)
    before = encode_state(state)
    after = step(state, make_event(kind, 10**6, seconds=1))
    assert encode_state(state) == before
    assert after.state != state


def test_alerts_and_support_messages_are_kept_newest_first_whatever_their_arrival_order() -> None:
    address = "late@example.com"
    times = [1_700_000_300_000, 1_700_000_100_000, 1_700_000_200_000]
    spam = [brevo_email("spam", email=address, ts_epoch=t, **{"message-id": f"s{t}"}) for t in times]
    state, _ = run(address, *spam)
    assert [alert.at for alert in state.alerts] == sorted(times)

    phone = "+33612345678"
    replies = [brevo_sms("replied", text=f"question {t}", ts_epoch=t) for t in times]
    state, _ = run(phone, *replies)
    assert [message.at for message in state.inbox] == sorted(times)
