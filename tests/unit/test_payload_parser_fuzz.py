"""The payload parser over any JSON a client can send: a canonical event or InvalidEvent, nothing else."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.brevo import InvalidEvent, canonicalize_all, encode_all, split_body
from schemas.event import encode_event

RECEIVED = datetime(2026, 12, 4, tzinfo=UTC)
NAMES = [
    *("event", "email", "id", "date", "ts", "ts_event", "ts_epoch", "message-id", "tag", "tags", "camp_id"),
    *("link", "URL", "reason", "phone", "to", "msg_status", "text", "list_id", "listIds", "attributes"),
    *("content", "sms", "SMS", "emailBlacklisted", "campaign name", "subject", "items"),
]
EVENT_NAMES = [
    *("opened", "delivered", "click", "hard_bounce", "spam", "unsubscribed", "sms_delivered"),
    *("contact_updated", "list_addition", "reply", "campaign_started", "", "OPENED ", "nope"),
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from([*EVENT_NAMES, "jane@example.com", "+33612345678", "2024-01-01 10:00:00", '["a"]'])
)
KEYS = st.sampled_from(NAMES) | st.text(max_size=8)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=6),
    max_leaves=30,
)
EVENTS = st.dictionaries(st.sampled_from(NAMES), JSON, max_size=10)
INBOUND = st.fixed_dictionaries({"items": st.lists(JSON, max_size=3)})
BODIES = EVENTS | st.lists(EVENTS, max_size=4) | INBOUND | JSON


@settings(max_examples=400, deadline=None)
@given(BODIES)
def test_any_body_becomes_canonical_events_or_a_clear_refusal(body: object) -> None:
    try:
        raw_events = split_body(body)
        for raw, inbound in raw_events:
            models = canonicalize_all(raw, RECEIVED, inbound=inbound)
            encoded = encode_all(raw, RECEIVED, inbound=inbound)
            assert [e.value for e in encoded] == [encode_event(m) for m in models]  # the fast path agrees
    except InvalidEvent as refusal:
        message = str(refusal)
        assert message  # a 400 that says why
