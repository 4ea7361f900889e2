"""Projection views and the read model: merging, tiers, preferred channel, suppressions, indices, order."""

from dataclasses import replace

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from domain.state import (
    Alert,
    CampaignCounts,
    CampaignState,
    CustomerState,
    EmailChannel,
    InboxMessage,
    SmsChannel,
    encode_campaign,
    encode_state,
)
from projections.common import iso
from projections.customer_view import Channel, EmailStatus, SmsStatus, customer_json, preferred_channel
from projections.store import ReadModel
from projections.views import campaign_stats, customer_view, suppression_of

STATES = TypeAdapter(CustomerState)
EMAIL = "jane@example.com"
PHONE = "+33612345678"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def email_state(**changes: object) -> CustomerState:
    return STATES.validate_python({"address": EMAIL, "kind": "email", "email": EMAIL, **changes})


def phone_state(**changes: object) -> CustomerState:
    return STATES.validate_python({"address": PHONE, "kind": "phone", "phone": PHONE, **changes})


def linked_pair() -> tuple[CustomerState, CustomerState]:
    email = email_state(
        phone=PHONE,
        email_channel=EmailChannel(
            sent=4, delivered=4, opens=2, unique_opens=3, proxy_opens=1, clicks=1, last_clicked_at=T0 + 5000
        ),
        score=8,
        rewards_visits=1,
        last_rewards_visit_at=T0 + 5000,
        loyalty_engagements=2,
        lists=(7, 3),
        campaigns={"45": CampaignCounts(name="Spring", delivered=4, opens=3, clicks=1)},
        alerts=(Alert(alert_id="a1", kind="spam_report", address=EMAIL, at=T0 + 1000, campaign="45"),),
    )
    phone = phone_state(
        email=EMAIL,
        sms=SmsChannel(
            sent=3, delivered=2, failed=1, replies=1, last_failed_at=T0, last_delivered_at=T0 + 9000
        ),
        rewards_visits=2,
        last_rewards_visit_at=T0 + 9000,
        loyalty_engagements=1,
        lists=(3, 9),
        campaigns={"45": CampaignCounts(delivered=1), "tag:sms": CampaignCounts(delivered=2)},
        inbox=(InboxMessage(message_id="m1", address=PHONE, at=T0 + 2000, text="where is my order"),),
    )
    return email, phone


def model_of(*states: CustomerState | CampaignState) -> ReadModel:
    model = ReadModel()
    for state in states:
        if isinstance(state, CampaignState):
            model.apply(state.key, encode_campaign(state))
        else:
            model.apply(state.address, encode_state(state))
    return model


# -- the merged customer view


def test_linked_email_and_phone_merge_into_one_view() -> None:
    email, phone = linked_pair()
    view = customer_view(email, phone)
    assert (view.email, view.phone) == (EMAIL, PHONE)
    assert view.channels.email.counts.delivered == 4
    assert view.channels.email.counts.opened == 2
    assert view.channels.email.counts.unique_opened == 3
    assert view.channels.email.open_rate == 0.75  # effective opens: max(2, 3) per delivered
    assert view.channels.email.click_rate == 0.25
    assert view.channels.email.last_seen.clicked_at == "2026-01-01T00:00:05Z"
    assert view.channels.sms.counts.sent == 3
    assert view.channels.sms.counts.replies == 1
    assert view.channels.sms.status == "ok"  # delivered after it failed
    assert view.rewards_visits == 3
    assert view.last_rewards_visit_at == "2026-01-01T00:00:09Z"
    assert view.loyalty_engagements == 3
    assert view.lists == [3, 7, 9]
    assert view.campaigns["45"].delivered == 5
    assert view.campaigns["45"].name == "Spring"
    assert view.campaigns["tag:sms"].delivered == 2
    assert [a.alert_id for a in view.alerts] == ["a1"]
    assert [m.message_id for m in view.inbox] == ["m1"]
    assert view.engagement_score == 8
    assert view.tier == "bronze"
    assert view.preferred_channel == "email"


@pytest.mark.parametrize("linked", [False, True])
def test_a_campaign_name_left_empty_is_null(linked: bool) -> None:
    email = email_state(campaigns={"45": CampaignCounts(name="", delivered=1)})
    phone = phone_state(email=EMAIL) if linked else None
    assert orjson.loads(customer_json(email, phone))["campaigns"]["45"]["name"] is None
    assert customer_view(email, phone).campaigns["45"].name is None


def test_the_view_is_the_same_from_either_side() -> None:
    email, phone = linked_pair()
    assert customer_view(email, phone) == customer_view(phone, email)


def test_a_lone_phone_has_no_email_channel() -> None:
    view = customer_view(phone_state(), None)
    assert view.email is None
    assert view.channels.email.status == "none"
    assert view.channels.email.open_rate is None
    assert view.channels.sms.status == "ok"
    assert view.preferred_channel == "sms"
    assert view.tier == "inactive"


def test_rates_are_null_before_any_delivery() -> None:
    view = customer_view(email_state(email_channel=EmailChannel(sent=2)), None)
    assert view.channels.email.open_rate is None
    assert view.channels.email.click_rate is None
    assert view.channels.sms.status == "none"


@pytest.mark.parametrize(
    ("score", "tier"),
    [(0, "inactive"), (1, "bronze"), (19, "bronze"), (20, "silver"), (50, "gold"), (80, "platinum")],
)
def test_tier_follows_the_highest_score_of_the_pair(score: int, tier: str) -> None:
    view = customer_view(email_state(score=score), phone_state(email=EMAIL, score=0))
    assert (view.engagement_score, view.tier) == (score, tier)


def test_email_status_invalid_beats_spam_beats_unsubscribed() -> None:
    bounced = EmailChannel(
        delivered=1, last_delivered_at=T0, last_hard_bounce_at=T0 + 1, hard_bounce_reason="no mailbox"
    )
    invalid = customer_view(email_state(email_channel=bounced, spam_reported=True, marketing_off_at=T0), None)
    assert invalid.channels.email.status == "invalid"
    assert invalid.channels.email.invalid_reason == "no mailbox"
    spam = customer_view(email_state(spam_reported=True, marketing_off_at=T0), None)
    assert spam.channels.email.status == "spam_reported"
    unsubscribed = customer_view(email_state(marketing_off_at=T0), None)
    assert unsubscribed.channels.email.status == "unsubscribed"
    assert not unsubscribed.marketing_enabled
    resubscribed = customer_view(email_state(marketing_off_at=T0, marketing_on_at=T0 + 1), None)
    assert resubscribed.channels.email.status == "active"


def test_a_delivery_after_a_hard_bounce_makes_the_email_valid_again() -> None:
    channel = EmailChannel(
        delivered=1, last_hard_bounce_at=T0, last_delivered_at=T0 + 1, hard_bounce_reason="x"
    )
    view = customer_view(email_state(email_channel=channel), None)
    assert view.channels.email.status == "active"
    assert view.channels.email.invalid_reason is None


def test_marketing_follows_the_newest_change_of_either_state() -> None:
    off = email_state(phone=PHONE, marketing_off_at=T0 + 5)
    on = phone_state(email=EMAIL, marketing_on_at=T0 + 9)
    assert customer_view(off, on).marketing_enabled
    assert not customer_view(off, phone_state(email=EMAIL, marketing_on_at=T0 + 5)).marketing_enabled


def test_sms_status_unsubscribed_and_failing() -> None:
    stopped = customer_view(phone_state(sms=SmsChannel(last_stop_at=T0)), None)
    assert stopped.channels.sms.status == "unsubscribed"
    assert not stopped.channels.sms.subscribed
    assert stopped.preferred_channel is None
    failing = customer_view(
        phone_state(sms=SmsChannel(failed=1, last_failed_at=T0, last_failure_reason="absent")), None
    )
    assert failing.channels.sms.status == "failing"
    assert failing.channels.sms.failure_reason == "absent"
    assert failing.preferred_channel is None


@pytest.mark.parametrize(
    ("email", "sms", "preferred"),
    [
        ("active", "ok", "email"),
        ("active", "none", "email"),
        ("invalid", "ok", "sms"),
        ("spam_reported", "ok", "sms"),
        ("unsubscribed", "ok", "sms"),
        ("none", "ok", "sms"),
        ("invalid", "failing", None),
        ("unsubscribed", "unsubscribed", None),
        ("none", "none", None),
    ],
)
def test_preferred_channel(email: EmailStatus, sms: SmsStatus, preferred: Channel | None) -> None:
    assert preferred_channel(email, sms) == preferred


def test_an_invalid_email_prefers_sms_on_the_linked_phone() -> None:
    email, phone = linked_pair()
    bounced = replace(email, email_channel=EmailChannel(last_hard_bounce_at=T0))
    assert customer_view(bounced, phone).preferred_channel == "sms"


def test_iso_times_are_utc_with_z() -> None:
    assert iso(T0) == "2026-01-01T00:00:00Z"
    assert iso(T0 + 1) == "2026-01-01T00:00:00.001Z"
    assert iso(None) is None


# -- suppressions


def test_suppression_reasons() -> None:
    assert suppression_of(email_state()) is None
    assert suppression_of(phone_state()) is None
    listed = suppression_of(
        email_state(
            email_channel=EmailChannel(last_hard_bounce_at=T0, hard_bounce_reason="unknown user"),
            spam_reported=True,
            marketing_off_at=T0 + 1000,
        )
    )
    assert listed is not None
    assert listed.reasons == ["invalid", "spam_reported", "unsubscribed"]
    assert listed.invalid_reason == "unknown user"
    assert listed.since == "2026-01-01T00:00:01Z"
    texted = suppression_of(phone_state(sms=SmsChannel(last_stop_at=T0)))
    assert texted is not None
    assert (texted.channel, texted.reasons) == ("sms", ["unsubscribed"])


def test_deleted_customers_are_not_suppressed() -> None:
    assert suppression_of(email_state(marketing_off_at=T0, last_deleted_at=T0)) is None


# -- campaign stats


def test_campaign_stats_of_a_campaign_and_a_tag() -> None:
    lifecycle = CampaignState(key="campaign:45", camp_id="45", name="Spring", status="paused", status_at=T0)
    stats = campaign_stats("45", CampaignCounts(name="subject", delivered=4, opens=2, clicks=1), lifecycle)
    assert (stats.camp_id, stats.tag, stats.name, stats.status) == ("45", None, "Spring", "paused")
    assert (stats.open_rate, stats.click_rate, stats.status_at) == (0.5, 0.25, "2026-01-01T00:00:00Z")
    tag = campaign_stats("tag:welcome", CampaignCounts(), None)
    assert (tag.camp_id, tag.tag, tag.status, tag.open_rate) == (None, "welcome", None, None)


# -- the read model


def test_campaign_counts_follow_updates_and_deleted_customers_still_count() -> None:
    email, phone = linked_pair()
    model = model_of(email, phone)
    first = model.campaign("45")
    assert first is not None
    assert first.delivered == 5
    model.apply(EMAIL, encode_state(replace(email, campaigns={"45": CampaignCounts(delivered=6)})))
    updated = model.campaign("45")
    assert updated is not None
    assert updated.delivered == 7
    model.apply(PHONE, encode_state(replace(phone, last_deleted_at=T0)))
    after_delete = model.campaign("45")
    assert after_delete is not None
    assert after_delete.delivered == 7
    model.apply(PHONE, None)
    assert model.campaign("tag:sms") is None
    gone = model.campaign("45")
    assert gone is not None
    assert gone.delivered == 6


def test_a_lifecycle_alone_makes_a_campaign() -> None:
    model = model_of(CampaignState(key="campaign:9", camp_id="9", name="Autumn", status="started"))
    assert [(c.key, c.name, c.status, c.delivered) for c in model.campaigns()] == [
        ("9", "Autumn", "started", 0)
    ]
    model.apply("campaign:9", None)
    assert model.campaigns() == []


def test_links_resolve_in_both_directions() -> None:
    email, phone = linked_pair()
    model = model_of(email, phone)
    assert model.customer(EMAIL) == model.customer(PHONE) == customer_view(email, phone)
    only_email = model_of(email)
    by_phone = only_email.customer(PHONE)
    assert by_phone is not None
    assert (by_phone.email, by_phone.phone) == (EMAIL, PHONE)
    only_phone = model_of(phone)
    by_email = only_phone.customer(EMAIL)
    assert by_email is not None
    assert by_email.channels.sms.counts.sent == 3


def test_a_link_the_other_side_contradicts_is_not_followed() -> None:
    email, _ = linked_pair()
    other = phone_state(email="someone@example.com", sms=SmsChannel(sent=9))
    view = model_of(email, other).customer(EMAIL)
    assert view is not None
    assert view.channels.sms.counts.sent == 0


def test_deleted_customers_vanish_and_come_back_on_undelete() -> None:
    email, phone = linked_pair()
    model = model_of(email, phone)
    model.apply(EMAIL, encode_state(replace(email, last_deleted_at=T0)))
    assert model.customer(EMAIL) is None
    assert model.customer(PHONE) is None
    assert model.alerts(10) == []
    assert model.inbox(10) == []
    assert model.state(EMAIL) is not None
    undeleted = replace(email, last_deleted_at=T0, last_contact_at=T0 + 1)
    model.apply(EMAIL, encode_state(undeleted))
    assert model.customer(EMAIL) is not None
    assert len(model.inbox(10)) == 1


def test_alerts_newest_first_with_limit_and_before() -> None:
    states = [
        email_state(alerts=(Alert(alert_id="b", kind="spam_report", address=EMAIL, at=T0 + 2),)),
        CustomerState(
            address="joe@example.com",
            kind="email",
            alerts=(
                Alert(alert_id="a", kind="spam_report", address="joe@example.com", at=T0 + 2),
                Alert(alert_id="c", kind="spam_report", address="joe@example.com", at=T0 + 1),
            ),
        ),
    ]
    model = model_of(*states)
    assert [a.alert_id for a in model.alerts(10)] == ["a", "b", "c"]
    assert [a.alert_id for a in model.alerts(2)] == ["a", "b"]
    assert [a.alert_id for a in model.alerts(10, before=T0 + 2)] == ["c"]
    model.apply(EMAIL, encode_state(email_state()))
    assert [a.alert_id for a in model.alerts(10)] == ["a", "c"]


def test_suppressions_skip_deleted_customers_and_follow_updates() -> None:
    model = model_of(email_state(marketing_off_at=T0), phone_state(sms=SmsChannel(last_stop_at=T0)))
    assert [(s.channel, s.address) for s in model.suppressions()] == [("email", EMAIL), ("sms", PHONE)]
    model.apply(EMAIL, encode_state(email_state(marketing_off_at=T0, marketing_on_at=T0 + 1)))
    assert [s.address for s in model.suppressions()] == [PHONE]
    model.apply(PHONE, encode_state(phone_state(sms=SmsChannel(last_stop_at=T0), last_deleted_at=T0)))
    assert model.suppressions() == []


def test_an_undecodable_record_forgets_its_key() -> None:
    model = model_of(email_state())
    model.apply(EMAIL, b'{"address": "jane@example.com", "delivered": 3}')
    assert model.customer(EMAIL) is None
    assert len(model) == 0


# -- order does not matter

addresses = st.sampled_from([EMAIL, "joe@example.com", PHONE, "+14155550100"])
small = st.integers(min_value=0, max_value=5)
counts = st.builds(
    CampaignCounts, name=st.sampled_from([None, "A", "B"]), delivered=small, opens=small, clicks=small
)


@st.composite
def customer_states(draw: st.DrawFn, address: str) -> CustomerState:
    kind = "email" if "@" in address else "phone"
    other = draw(st.sampled_from([None, PHONE, "+14155550100"] if kind == "email" else [None, EMAIL]))
    alerts = draw(st.lists(st.sampled_from(["x", "y", "z"]), unique=True, max_size=2))
    return STATES.validate_python(
        {
            "address": address,
            "kind": kind,
            "phone" if kind == "email" else "email": other,
            "email_channel": EmailChannel(delivered=draw(small), opens=draw(small)),
            "score": draw(small),
            "last_deleted_at": draw(st.sampled_from([None, T0])),
            "marketing_off_at": draw(st.sampled_from([None, T0])),
            "campaigns": draw(st.dictionaries(st.sampled_from(["1", "2", "tag:t"]), counts, max_size=3)),
            "alerts": [
                Alert(alert_id=i, kind="spam_report", address=address, at=T0 + len(i)) for i in alerts
            ],
        }
    )


@st.composite
def table(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    keys = draw(st.lists(addresses, unique=True))
    pairs = [(key, encode_state(draw(customer_states(key)))) for key in keys]
    if draw(st.booleans()):
        lifecycle = CampaignState(key="campaign:1", camp_id="1", name=draw(st.sampled_from([None, "Life"])))
        pairs.append((lifecycle.key, encode_campaign(lifecycle)))
    return pairs


def fed(pairs: list[tuple[str, bytes | None]]) -> ReadModel:
    model = ReadModel()
    for key, value in pairs:
        model.apply(key, value)
    return model


def served(model: ReadModel) -> tuple[object, ...]:
    keys = [EMAIL, "joe@example.com", PHONE, "+14155550100"]
    return (
        model.digest(),
        len(model),
        model.campaigns(),
        model.suppressions(),
        model.alerts(50),
        [model.customer(k) for k in keys],
        [model.customer_json(k) for k in keys],
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), pairs=table())
def test_any_order_gives_the_same_model(data: st.DataObject, pairs: list[tuple[str, bytes]]) -> None:
    shuffled = data.draw(st.permutations(pairs))
    assert served(fed(list(pairs))) == served(fed(list(shuffled)))


@settings(max_examples=100, deadline=None)
@given(history=table(), final=table())
def test_a_live_model_equals_one_rebuilt_from_the_latest_states(
    history: list[tuple[str, bytes]], final: list[tuple[str, bytes]]
) -> None:
    final_keys = {key for key, _ in final}
    tombstones: list[tuple[str, bytes | None]] = [(k, None) for k, _ in history if k not in final_keys]
    live = fed([*history, *tombstones, *final])
    rebuilt = fed(list(final))
    assert served(live) == served(rebuilt)


@settings(max_examples=150, deadline=None)
@given(pairs=table())
def test_the_served_json_is_the_view_model_dumped(pairs: list[tuple[str, bytes]]) -> None:
    model = fed(list(pairs))
    for key in [EMAIL, "joe@example.com", PHONE, "+14155550100", "nobody@example.com"]:
        view = model.customer(key)
        expected = None if view is None else orjson.dumps(view.model_dump(mode="json"))
        assert model.customer_json(key) == expected  # the same fields, in the schema's order


@settings(max_examples=150, deadline=None)
@given(data=st.data(), history=table(), final=table(), kept=st.sampled_from([0, 1, 2, 1000]))
def test_served_json_follows_every_apply(
    data: st.DataObject, history: list[tuple[str, bytes]], final: list[tuple[str, bytes]], kept: int
) -> None:
    keys = [EMAIL, "joe@example.com", PHONE, "+14155550100"]
    steps: list[tuple[str, bytes | None]] = [*history, *((k, None) for k, _ in history), *final]
    model = ReadModel(served_views=kept)
    for key, value in data.draw(st.permutations(steps)):
        model.apply(key, value)
        for k in data.draw(st.lists(st.sampled_from(keys), max_size=6)):
            view = model.customer(k)
            expected = None if view is None else orjson.dumps(view.model_dump(mode="json"))
            assert model.customer_json(k) == expected
