"""Reading one field out of a raw Brevo payload, in either dialect: addresses, tags, link, reason, text.

These readers run once, at ingest, to fill the canonical event's typed fields (`schemas.brevo`),
and in the upcaster for events stored before those fields existed (`schemas.upcast`). The fold
reads the typed fields only, never the payload. The stored logs pin their results: a replay of
the committed fixture log must keep giving the same projections (`tests/fixtures`). A change of
what a reader returns is a new schema version, with the old reader kept for the upcaster.
"""

import re
from typing import TypedDict

import orjson
from pydantic import JsonValue

from schemas.event_types import EventType

RawEvent = dict[str, JsonValue]

_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_PHONE_NOISE = str.maketrans("", "", " -.()/")
_TEXT_KEYS = ("text", "reply", "message", "content", "body")


def normalize_email(value: JsonValue) -> str | None:
    """The email lower-cased and trimmed, or None when it is not an email address."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: JsonValue) -> str | None:
    """The phone in E.164 (`+` and 8 to 15 digits, country code first), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip().translate(_PHONE_NOISE)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    else:
        digits = text
    if not (digits.isdigit() and digits.isascii() and 8 <= len(digits) <= 15) or digits[0] == "0":
        return None
    return "+" + digits


def contact_phone(raw: RawEvent) -> str | None:
    """The phone a contact event carries: `phone`, `sms`/`SMS`, or `SMS` in `attributes` or `content`."""
    candidates: list[JsonValue] = [raw.get("phone"), raw.get("sms"), raw.get("SMS")]
    for nested in (raw.get("attributes"), raw.get("content")):
        for item in nested if isinstance(nested, list) else [nested]:
            if isinstance(item, dict):
                candidates += [item.get("SMS"), item.get("sms"), item.get("phone")]
    return next((phone for phone in map(normalize_phone, candidates) if phone), None)


def text_of(value: JsonValue) -> str | None:
    """A string value, trimmed, or None."""
    if isinstance(value, str):
        return value.strip() or None
    return None


def _texts(values: list[JsonValue]) -> list[str]:
    """The non-empty trimmed strings of a list, in order."""
    found = []
    for value in values:
        if isinstance(value, str):
            text = value.strip()
            if text:
                found.append(text)
    return found


def link(raw: RawEvent) -> str | None:
    """The clicked URL: `link` (transactional) or `URL` (marketing)."""
    return text_of(raw.get("link")) or text_of(raw.get("URL"))


def tags(raw: RawEvent) -> list[str]:
    """The tags: `tags` (array), or `tag` (a plain string or an array JSON-encoded as a string)."""
    listed = raw.get("tags")
    if isinstance(listed, list):
        return _texts(listed)
    tag = text_of(raw.get("tag"))
    if tag is None:
        return []
    if tag.startswith("["):
        try:
            decoded = orjson.loads(tag)
        except orjson.JSONDecodeError:
            return [tag]
        return _texts(decoded) if isinstance(decoded, list) else [tag]
    return [tag]


def campaign_name(raw: RawEvent) -> str | None:
    """The campaign's name (marketing payloads) or the email's subject."""
    return text_of(raw.get("campaign name")) or text_of(raw.get("subject"))


def reason(raw: RawEvent) -> str | None:
    """Why a bounce or failure happened: `reason`, else the SMS `msg_status`."""
    return text_of(raw.get("reason")) or text_of(raw.get("msg_status"))


def reply_text(raw: RawEvent) -> str | None:
    """The text of an SMS reply: the first non-empty of `text`, `reply`, `message`, `content`, `body`."""
    return next((t for t in (text_of(raw.get(k)) for k in _TEXT_KEYS) if t), None)


def list_ids(raw: RawEvent) -> list[int]:
    """The list ids of a contact event (`list_id` or `listIds`, a number or an array), sorted, once each."""
    value = raw.get("list_id", raw.get("listIds"))
    values = value if isinstance(value, list) else [value]
    return sorted({v for v in values if isinstance(v, int) and not isinstance(v, bool)})


def flag(raw: RawEvent, key: str) -> bool | None:
    """A boolean attribute of a contact event, found at the top level, in `attributes` or in `content`."""
    for source in (raw, raw.get("attributes"), raw.get("content")):
        items = source if isinstance(source, list) else [source]
        for item in items:
            if isinstance(item, dict):
                value = item.get(key)
                if isinstance(value, bool):
                    return value
    return None


_FAMILY = {kind: kind.value.partition(".")[0] for kind in EventType}  # `email` of `email.opened`


class TypedFields(TypedDict, total=False):
    """The canonical event's typed fields, as read from a payload (absent: the event has none)."""

    campaign_name: str | None
    tags: list[str]
    link: str | None
    reason: str | None
    text: str | None
    email: str | None
    phone: str | None
    list_ids: list[int]
    email_blacklisted: bool | None


def typed_fields(raw: RawEvent, kind: EventType) -> TypedFields:
    """The fields of an event of this type that the fold needs, read from its payload."""
    family = _FAMILY[kind]
    if family == "email":
        return {
            "campaign_name": campaign_name(raw),
            "tags": tags(raw),
            "link": link(raw),
            "reason": reason(raw),
        }
    if family == "sms":
        return {"reason": reason(raw), "text": reply_text(raw)}
    if family == "contact":
        return {
            "email": normalize_email(raw.get("email")),
            "phone": contact_phone(raw),
            "list_ids": list_ids(raw),
            "email_blacklisted": flag(raw, "emailBlacklisted"),
        }
    if family == "campaign":
        return {"campaign_name": campaign_name(raw)}
    return {}
