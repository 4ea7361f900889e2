"""Reading the fields the fold needs out of a raw Brevo payload, in either dialect."""

import orjson
from pydantic import JsonValue

from domain.events import FoldEvent

_TEXT_KEYS = ("text", "reply", "message", "content", "body")


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


def link(event: FoldEvent) -> str:
    """The clicked URL: `link` (transactional) or `URL` (marketing)."""
    payload = event.payload
    return text_of(payload.get("link")) or text_of(payload.get("URL")) or ""


def tags(event: FoldEvent) -> list[str]:
    """The tags: `tags` (array), or `tag` (a plain string or an array JSON-encoded as a string)."""
    payload = event.payload
    listed = payload.get("tags")
    if isinstance(listed, list):
        return _texts(listed) if listed else []
    tag = text_of(payload.get("tag"))
    if tag is None:
        return []
    if tag.startswith("["):
        try:
            decoded = orjson.loads(tag)
        except orjson.JSONDecodeError:
            return [tag]
        return _texts(decoded) if isinstance(decoded, list) else [tag]
    return [tag]


def campaign_keys(event: FoldEvent, tagged: list[str]) -> list[str]:
    """Where the event counts in campaign stats: its campaign (`camp_id`), else each of its tags."""
    if event.campaign is not None:
        return [event.campaign]
    return [f"tag:{tag}" for tag in tagged]


def campaign_name(event: FoldEvent) -> str | None:
    """The campaign's name (marketing payloads) or the email's subject."""
    payload = event.payload
    return text_of(payload.get("campaign name")) or text_of(payload.get("subject"))


def reason(event: FoldEvent) -> str | None:
    """Why a bounce or failure happened: `reason`, else the SMS `msg_status`."""
    return text_of(event.payload.get("reason")) or text_of(event.payload.get("msg_status"))


def reply_text(event: FoldEvent) -> str:
    """The text of an SMS reply."""
    return next((t for t in (text_of(event.payload.get(k)) for k in _TEXT_KEYS) if t), "")


def list_ids(event: FoldEvent) -> tuple[int, ...]:
    """The list ids of a contact or unsubscribe event (`list_id` or `listIds`, a number or an array)."""
    value = event.payload.get("list_id", event.payload.get("listIds"))
    values = value if isinstance(value, list) else [value]
    return tuple(sorted({v for v in values if isinstance(v, int) and not isinstance(v, bool)}))


def flag(event: FoldEvent, key: str) -> bool | None:
    """A boolean attribute of a contact event, found at the top level, in `attributes` or in `content`."""
    for source in (event.payload, event.payload.get("attributes"), event.payload.get("content")):
        items = source if isinstance(source, list) else [source]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get(key), bool):
                value = item[key]
                return value if isinstance(value, bool) else None
    return None
