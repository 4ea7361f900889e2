"""A Brevo transactional email event, shaped like what real Brevo posts."""

from pydantic import JsonValue

Raw = dict[str, JsonValue]


def brevo_email(event: str, email: str = "jane.doe@example.com", **extra: JsonValue) -> Raw:
    """A transactional email event shaped like real Brevo's (ts_epoch in ms, webhook id, tags)."""
    return {
        "event": event,
        "email": email,
        "id": 814119,
        "date": "2023-05-31 16:37:07",
        "ts": 1685543827,
        "ts_event": 1685543827,
        "ts_epoch": 1685543827372,
        "message-id": "<202305311437.85220493321@smtp-relay.mailin.fr>",
        "subject": "Welcome",
        "tags": ["welcome"],
        "tag": '["welcome"]',
        **extra,
    }
