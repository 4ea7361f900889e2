"""Both Brevo dialects become canonical events; what cannot be keyed is refused with a reason."""

from datetime import UTC, datetime

import pytest
from pydantic import JsonValue

from schemas.brevo import InvalidEvent, canonicalize, event_id, split_body
from schemas.brevo_fields import normalize_phone
from schemas.event import CanonicalEvent, decode_event, encode_event
from schemas.event_types import EventType
from tests.payloads import brevo_email, brevo_sms, seed_email

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (seed_email("delivered"), EventType.EMAIL_DELIVERED),
        (seed_email("opened"), EventType.EMAIL_OPENED),
        (seed_email("clicked", link="https://x.example/rewards"), EventType.EMAIL_CLICKED),
        (brevo_email("delivered"), EventType.EMAIL_DELIVERED),
        (brevo_email("unique_opened"), EventType.EMAIL_UNIQUE_OPENED),
        (brevo_email("click", link="https://x.example"), EventType.EMAIL_CLICKED),
        (brevo_email("hard_bounce"), EventType.EMAIL_HARD_BOUNCED),
        (brevo_email("complaint"), EventType.EMAIL_SPAM),
        (brevo_email("proxy_open"), EventType.EMAIL_PROXY_OPENED),
        (brevo_email("Delivered "), EventType.EMAIL_DELIVERED),
        (brevo_sms("delivered"), EventType.SMS_DELIVERED),
        ({"event": "sms_failed", "phone": "+33 6 12 34 56 78", "reason": "x"}, EventType.SMS_FAILED),
        (brevo_email("something_new"), EventType.UNKNOWN),
    ],
)
def test_names_of_both_dialects_map_to_one_canonical_type(
    payload: dict[str, JsonValue], expected: EventType
) -> None:
    assert canonicalize(payload, RECEIVED).type is expected


def test_email_is_lower_cased_and_phone_is_e164() -> None:
    assert canonicalize(seed_email("delivered"), RECEIVED).address == "jane.doe@example.com"
    assert canonicalize(brevo_sms("delivered"), RECEIVED).address == "+33612345678"
    assert normalize_phone("0033 6-12.34.56.78") == "+33612345678"
    assert normalize_phone("0612345678") is None
    assert normalize_phone(True) is None


def test_occurred_at_prefers_ts_epoch_milliseconds() -> None:
    event = canonicalize(brevo_email("delivered"), RECEIVED)
    assert event.occurred_at == datetime(2023, 5, 31, 14, 37, 7, 372000, tzinfo=UTC)


def test_occurred_at_falls_back_to_ts_event_then_ts_then_receipt() -> None:
    assert canonicalize(
        {"event": "opened", "email": "a@b.co", "ts_event": 1604933737, "ts": 1}, RECEIVED
    ).occurred_at == (datetime(2020, 11, 9, 14, 55, 37, tzinfo=UTC))
    assert canonicalize({"event": "opened", "email": "a@b.co", "ts": 1640995200}, RECEIVED).occurred_at == (
        datetime(2022, 1, 1, tzinfo=UTC)
    )
    assert (
        canonicalize({"event": "opened", "email": "a@b.co", "ts": "soon"}, RECEIVED).occurred_at == RECEIVED
    )
    assert canonicalize({"event": "opened", "email": "a@b.co", "ts": 1e300}, RECEIVED).occurred_at == RECEIVED


def test_event_id_is_the_same_for_a_resent_event_and_ignores_the_webhook_id() -> None:
    first = brevo_email("delivered")
    again = {**brevo_email("delivered"), "id": 999}
    other = brevo_email("delivered", ts_epoch=1685543827373)
    assert event_id(first) == event_id(again)
    assert event_id(first) != event_id(other)
    assert canonicalize(first, RECEIVED).event_id == canonicalize(first, datetime.now(UTC)).event_id


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"email": "a@b.co"}, "missing `event`"),
        ({"event": "", "email": "a@b.co"}, "missing `event`"),
        ({"event": 3, "email": "a@b.co"}, "missing `event`"),
        ({"event": "delivered"}, "missing `email`"),
        ({"event": "delivered", "email": "not-an-email"}, "not an email address"),
        ({"event": "sms_delivered"}, "missing `phone`"),
        ({"event": "sms_delivered", "phone": "12"}, "international number"),
    ],
)
def test_unkeyable_events_are_refused_with_the_reason(payload: dict[str, JsonValue], reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        canonicalize(payload, RECEIVED)


def test_bodies_split_into_single_batched_and_inbound_events() -> None:
    assert split_body({"event": "delivered"}) == [({"event": "delivered"}, False)]
    assert split_body([{"event": "a"}, {"event": "b"}]) == [({"event": "a"}, False), ({"event": "b"}, False)]
    assert split_body({"items": [{"Uuid": ["x"]}]}) == [({"Uuid": ["x"]}, True)]
    for bad, reason in [
        ("text", "body must be"),
        ([], "no events"),
        ([1], "event 0"),
        ({"items": []}, "no events"),
    ]:
        with pytest.raises(InvalidEvent, match=reason):
            split_body(bad)


def test_inbound_items_are_kept_as_unknown() -> None:
    event = canonicalize({"Uuid": ["u1"], "From": {"Address": "x@y.co"}}, RECEIVED, inbound=True)
    assert (event.type, event.source_event, event.address) == (EventType.UNKNOWN, "inbound", None)
    assert event.key == event.event_id


def test_encoding_round_trips_and_keeps_the_payload_whole() -> None:
    payload = brevo_email("click", link="https://x.example/loyalty", **{"X-Mailin-custom": "k:v"})
    event = canonicalize(payload, RECEIVED)
    decoded = decode_event(encode_event(event))
    assert decoded == event
    assert decoded.payload == payload
    assert isinstance(decoded, CanonicalEvent)
