"""The canonical event's typed fields: read once at ingest, upcast for old events, the same either way."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from domain.events import FoldEvent, UndecodableEvent, decode_fold_event
from schemas.brevo import canonicalize, canonicalize_all, encode_all
from schemas.event import SCHEMA_VERSION, decode_event, encode_event
from schemas.event_types import EventType
from schemas.upcast import CURRENT, UnknownSchemaVersion, upcast
from tests.fixtures.history import HERE, raw_history, read_log
from tests.payloads import brevo_email, brevo_sms

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
Raw = dict[str, JsonValue]


def test_the_upcaster_ends_at_the_models_version() -> None:
    assert CURRENT == SCHEMA_VERSION == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (brevo_email("click", URL=" https://x.example/rewards "), {"link": "https://x.example/rewards"}),
        (brevo_email("delivered", tags=[" a ", "", 3, "b"]), {"tags": ("a", "b")}),
        (brevo_email("delivered", tags=None, tag='["x", "y"]'), {"tags": ("x", "y")}),
        (brevo_email("delivered", tags=None, tag="[broken"), {"tags": ("[broken",)}),
        (brevo_email("delivered", tags=None, tag="plain"), {"tags": ("plain",)}),
        (brevo_email("delivered", **{"campaign name": "Spring"}), {"campaign_name": "Spring"}),
        (brevo_email("delivered", subject="  "), {"campaign_name": None}),
        (brevo_email("hard_bounce", reason="mailbox full"), {"reason": "mailbox full"}),
        (brevo_sms("hard_bounce"), {"reason": "hard_bounce", "text": None}),
        ({"event": "sms_reply", "phone": "+33612345678", "reply": " STOP "}, {"text": "STOP"}),
        ({"event": "sms_reply", "phone": "+33612345678", "text": "", "body": "hi"}, {"text": "hi"}),
        (
            {"event": "contact_updated", "email": "A@B.co", "attributes": {"SMS": "33612345678"}},
            {"email": "a@b.co", "phone": "+33612345678", "list_ids": (), "email_blacklisted": None},
        ),
        (
            {"event": "list_addition", "email": "a@b.co", "list_id": [9, 2, 9, True, "x"]},
            {"list_ids": (2, 9)},
        ),
        (
            {"event": "contact_created", "email": "a@b.co", "content": [{"emailBlacklisted": True}]},
            {"email_blacklisted": True},
        ),
    ],
)
def test_ingest_reads_the_fields_the_fold_needs(raw: Raw, expected: dict[str, object]) -> None:
    event = canonicalize(raw, RECEIVED)
    assert {name: getattr(event, name) for name in expected} == expected


def test_fields_of_another_family_are_left_empty_and_out_of_the_stored_json() -> None:
    sms = canonicalize({**brevo_sms("delivered"), "tags": ["t"], "link": "https://x.example"}, RECEIVED)
    assert (sms.tags, sms.link, sms.list_ids) == ((), None, ())
    stored = orjson.loads(encode_event(sms))
    assert not {"tags", "link", "list_ids", "email", "phone", "campaign_name"} & stored.keys()


def test_a_linked_phone_event_carries_the_contacts_email() -> None:
    raw: Raw = {"event": "contact_updated", "email": "Jane@X.co", "SMS": "+33612345678"}
    event, linked = canonicalize_all(raw, RECEIVED)
    assert (event.address, event.phone) == ("jane@x.co", "+33612345678")
    assert linked.type is EventType.CONTACT_LINKED
    assert (linked.address, linked.email, linked.phone) == ("+33612345678", "jane@x.co", "+33612345678")


def test_every_version_1_record_upcasts_to_what_version_2_writes_for_the_same_traffic() -> None:
    old, new = read_log(HERE / "log_v1.jsonl"), read_log(HERE / "log_v2.jsonl")
    assert len(old) == len(new)
    for before, after in zip(old, new, strict=True):
        assert orjson.loads(before)["schema_version"] == 1
        assert decode_event(before) == decode_event(after)
        assert decode_fold_event(before) == decode_fold_event(after)


def test_the_fold_reads_the_typed_fields_not_the_payload() -> None:
    event = canonicalize(brevo_email("click", link="https://x.example/loyalty", tags=["vip"]), RECEIVED)
    assert "payload" not in FoldEvent._fields
    assert decode_fold_event(encode_event(event)) == FoldEvent.of(event)


def test_an_unknown_schema_version_is_refused_not_guessed() -> None:
    stored = orjson.loads(encode_event(canonicalize(brevo_email("delivered"), RECEIVED)))
    newer = orjson.dumps({**stored, "schema_version": 99})
    with pytest.raises(UndecodableEvent, match="schema_version 99"):
        decode_fold_event(newer)
    with pytest.raises(UnknownSchemaVersion):
        decode_event(newer)
    with pytest.raises(UnknownSchemaVersion):
        upcast({**stored, "schema_version": "2"})


def test_a_version_1_record_without_a_payload_object_is_undecodable() -> None:
    stored = orjson.loads(read_log(HERE / "log_v1.jsonl")[0])
    with pytest.raises(UndecodableEvent):
        decode_fold_event(orjson.dumps({**stored, "payload": [1, 2]}))
    with pytest.raises(UndecodableEvent):
        decode_fold_event(b"[1, 2]")


def _model_path(raw: Raw, received: datetime, inbound: bool) -> list[tuple[bytes, bytes]]:
    return [
        (event.key.encode(), encode_event(event))
        for event in canonicalize_all(raw, received, inbound=inbound)
    ]


def _fast_path(raw: Raw, received: datetime, inbound: bool) -> list[tuple[bytes, bytes]]:
    return [(event.key, event.value) for event in encode_all(raw, received, inbound=inbound)]


def test_the_ingesters_encoding_writes_the_models_bytes_for_the_whole_fixture_history() -> None:
    for n, (raw, inbound) in enumerate(raw_history()):
        received = RECEIVED + timedelta(seconds=n, microseconds=37 * n)
        assert _fast_path(raw, received, inbound) == _model_path(raw, received, inbound)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_BASES: list[Raw] = [
    brevo_email("click", link="https://x.example/rewards"),
    brevo_sms("hard_bounce"),
    {"event": "contact_updated", "email": "A@B.co", "attributes": {"SMS": "33612345678"}, "list_id": [3]},
    {"event": "campaign_started", "camp_id": 5, "campaign name": "Spring"},
]


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(_BASES),
    extra=st.dictionaries(st.text(max_size=8), _JSON, max_size=4),
    micros=st.integers(0, 10**6 - 1),
)
def test_the_ingesters_encoding_writes_the_models_bytes_for_any_payload(
    base: Raw, extra: dict[str, JsonValue], micros: int
) -> None:
    raw = {**extra, **base}
    received = RECEIVED + timedelta(microseconds=micros)
    assert _fast_path(raw, received, False) == _model_path(raw, received, False)
