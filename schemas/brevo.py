"""Turns Brevo webhook bodies, in the seed guide's dialect or real Brevo's, into canonical events."""

import hashlib
import math
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from pydantic import JsonValue

from schemas.brevo_fields import RawEvent, contact_phone, normalize_email, normalize_phone, typed_fields
from schemas.event import SCHEMA_VERSION, CanonicalEvent, from_epoch_ms, partition_key
from schemas.event_types import (
    EMAIL_NAMES,
    NEEDS_CAMPAIGN,
    NEEDS_CONTACT,
    NEEDS_EMAIL,
    NEEDS_PHONE,
    SMS_NAMES,
    EventType,
)

# Keys that name the webhook or the delivery rather than the event: left out of the event id.
_NOT_CONTENT = frozenset({"id"})
_MAX_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z, the last moment a datetime holds

MAX_EVENT_DEPTH = 64
"""How deep an event's objects and arrays may nest, the event object itself being level 1.

A real Brevo event is three or four levels deep at most. The limit keeps every later serialization of the
event (its id, its stored JSON, where the payload sits one level deeper, and any re-encoding downstream)
well inside orjson's 254-level recursion limit: a deeper event is a 400, never a crash.
"""
_TOO_DEEP = f"event nested deeper than {MAX_EVENT_DEPTH} levels of objects and arrays"


class InvalidEvent(ValueError):
    """A webhook body or event that cannot become a canonical event; the message says why."""


def split_body(body: object) -> list[tuple[RawEvent, bool]]:
    """The events of one webhook body: a single object, a batch array, or inbound `{"items": [...]}`.

    Each event comes with a flag that is true for inbound-parsing items.
    """
    if isinstance(body, dict):
        items = body.get("items")
        if "event" not in body and isinstance(items, list):
            return [(_as_object(item, index), True) for index, item in enumerate(items)] or _empty()
        return [(body, False)]
    if isinstance(body, list):
        return [(_as_object(item, index), False) for index, item in enumerate(body)] or _empty()
    raise InvalidEvent('body must be a JSON object, an array of objects, or {"items": [...]}')


def _as_object(item: object, index: int) -> RawEvent:
    if not isinstance(item, dict):
        raise InvalidEvent(f"event {index}: must be a JSON object")
    return item


def _empty() -> list[tuple[RawEvent, bool]]:
    raise InvalidEvent("batch holds no events")


class EncodedEvent(NamedTuple):
    """A canonical event as the ingester appends it: its partition key, id, type, and stored JSON."""

    key: bytes
    event_id: str
    type: EventType
    source_event: str
    value: bytes


def canonicalize_all(raw: RawEvent, received_at: datetime, *, inbound: bool = False) -> list[CanonicalEvent]:
    """The canonical events of one raw Brevo event.

    That is the event itself, plus a `contact.linked` event keyed by the phone when a contact event ties a
    phone to an email, so that the phone's own state learns its email.
    """
    return [CanonicalEvent.model_validate(fields) for fields in _all_fields(raw, received_at, inbound)]


def canonicalize(raw: RawEvent, received_at: datetime, *, inbound: bool = False) -> CanonicalEvent:
    """One raw Brevo event as a canonical event; raises InvalidEvent when it cannot be keyed."""
    return CanonicalEvent.model_validate(_fields(raw, received_at, inbound))


def encode_all(raw: RawEvent, received_at: datetime, *, inbound: bool = False) -> list[EncodedEvent]:
    """What `canonicalize_all` gives, encoded as `encode_event` would, without building the models.

    The ingester's hot path: the fields are built once and written once. They are valid by
    construction (the parser makes every one); a property test holds the bytes to the model's.
    """
    encoded = []
    for fields in _all_fields(raw, received_at, inbound):
        kind: EventType = fields["type"]
        event_id: str = fields["event_id"]
        key = partition_key(fields["address"], fields["campaign"], kind, event_id)
        value = orjson.dumps(fields, option=orjson.OPT_UTC_Z)
        encoded.append(EncodedEvent(key.encode(), event_id, kind, fields["source_event"], value))
    return encoded


def _all_fields(raw: RawEvent, received_at: datetime, inbound: bool) -> list[dict[str, Any]]:
    fields = _fields(raw, received_at, inbound)
    kind = fields["type"]
    address = fields["address"]
    phone = fields.get("phone") if kind in NEEDS_CONTACT else None
    if phone is None or address is None or address == phone:
        return [fields]
    linked = {
        **fields,
        "event_id": hashlib.blake2b(f"{fields['event_id']}:linked".encode(), digest_size=16).hexdigest(),
        "type": EventType.CONTACT_LINKED,
        "address": phone,
    }
    return [fields, linked]


def _fields(raw: RawEvent, received_at: datetime, inbound: bool) -> dict[str, Any]:
    """The canonical event's fields in the model's order, the empty typed ones left out as it leaves them."""
    event_name = _name(raw, "event")
    if inbound:
        source, kind = "inbound", EventType.UNKNOWN
    elif _is_sms(raw, event_name):
        source = event_name or _name(raw, "msg_status")
        kind = SMS_NAMES.get(source, EventType.UNKNOWN)
    else:
        source = event_name
        kind = EMAIL_NAMES.get(source, EventType.UNKNOWN)
    if not source:
        raise InvalidEvent("missing `event`")
    fields: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "event_id": _checked_event_id(raw),
        "type": kind,
        "source_event": source,
        "address": _address(raw, kind),
        "campaign": _campaign(raw, kind),
        "occurred_at": _occurred_at(raw, received_at),
        "received_at": received_at,
    }
    for name, value in typed_fields(raw, kind).items():
        if value is not None and value != []:
            fields[name] = value
    fields["payload"] = raw
    return fields


def check_depth(raw: RawEvent) -> None:
    """Raise InvalidEvent when the event nests deeper than MAX_EVENT_DEPTH levels.

    One pass, level by level, that keeps only the values that are objects or arrays.
    """
    level: list[Any] = [raw]
    for _ in range(MAX_EVENT_DEPTH):
        level = [
            value
            for container in level
            for value in (container.values() if isinstance(container, dict) else container)
            if isinstance(value, dict | list)
        ]
        if not level:
            return
    raise InvalidEvent(_TOO_DEEP)


def event_id(raw: RawEvent) -> str:
    """A digest of the event's content: equal for a re-sent event, different for any other."""
    return _digest(_content(raw))


def _checked_event_id(raw: RawEvent) -> str:
    """The event id, once the event is known to nest no deeper than MAX_EVENT_DEPTH levels.

    An event nests no deeper than it has brackets: counting those in the encoded content (in C, well under
    a microsecond) spares the walk for every event but the few with that many objects and arrays.
    """
    content = _content(raw)
    if content.count(b"{") + content.count(b"[") > MAX_EVENT_DEPTH or isinstance(raw.get("id"), dict | list):
        check_depth(raw)  # "id" is no part of the content, but is of the stored payload
    return _digest(content)


def _content(raw: RawEvent) -> bytes:
    content = dict(raw)  # a copy, then the keys left out: quicker than a filtering comprehension
    for key in _NOT_CONTENT:
        content.pop(key, None)
    try:
        return orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as error:  # deeper than orjson encodes (254 levels)
        raise InvalidEvent(_TOO_DEEP) from error


def _digest(content: bytes) -> str:
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _name(raw: RawEvent, key: str) -> str:
    value = raw.get(key)
    return value.strip().lower() if isinstance(value, str) else ""


def _is_sms(raw: RawEvent, event_name: str) -> bool:
    if "msg_status" in raw or event_name.startswith("sms_"):
        return True
    return "email" not in raw and ("to" in raw or "phone" in raw)


def _phone_field(raw: RawEvent) -> JsonValue:
    return raw.get("phone", raw.get("to"))


def _campaign(raw: RawEvent, kind: EventType) -> str | None:
    value = raw.get("camp_id", raw.get("campaign_id"))
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() in ("", "0"):
        if kind in NEEDS_CAMPAIGN:
            raise InvalidEvent("missing `camp_id`")
        return None
    return str(value).strip()


def _address(raw: RawEvent, kind: EventType) -> str | None:
    if kind in NEEDS_CONTACT:
        address = normalize_email(raw.get("email")) or contact_phone(raw)
        if address is None:
            raise InvalidEvent("contact event without an `email` or phone")
        return address
    if kind in NEEDS_EMAIL:
        if raw.get("email") in (None, ""):
            raise InvalidEvent("missing `email`")
        email = normalize_email(raw["email"])
        if email is None:
            raise InvalidEvent("`email` is not an email address")
        return email
    if kind in NEEDS_PHONE:
        if _phone_field(raw) in (None, ""):
            raise InvalidEvent("missing `phone` (or `to`)")
        phone = normalize_phone(_phone_field(raw))
        if phone is None:
            raise InvalidEvent("phone is not an international number (country code and 8 to 15 digits)")
        return phone
    return normalize_email(raw.get("email")) or normalize_phone(_phone_field(raw))


def _occurred_at(raw: RawEvent, received_at: datetime) -> datetime:
    ts_epoch = raw.get("ts_epoch")
    if type(ts_epoch) is int and 0 < ts_epoch < _MAX_MS:  # the common case, read as the loop below reads it
        return from_epoch_ms(ts_epoch)
    for key, scale in (("ts_epoch", 1), ("ts_event", 1000), ("ts", 1000)):
        number = _number(raw.get(key))
        if number is not None and 0 < number * scale < _MAX_MS:
            return from_epoch_ms(round(number * scale))
    date = raw.get("date")
    if isinstance(date, str):  # `YYYY-MM-DD HH:MM:SS` in the account's time zone, unknown here: read as UTC
        try:
            return datetime.strptime(date.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            pass
    return received_at


def _number(value: JsonValue) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
