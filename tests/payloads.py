"""Brevo payloads in both dialects, as test data shared by the suites."""

from pydantic import JsonValue

Raw = dict[str, JsonValue]


def seed_email(event: str, email: str = "Jane.Doe@Example.com", **extra: JsonValue) -> Raw:
    """An email event shaped like the seed guide's examples."""
    return {"event": event, "email": email, "message-id": f"seed-{event}-1", "ts": 1640995200, **extra}


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


def brevo_sms(msg_status: str, to: str = "33612345678", **extra: JsonValue) -> Raw:
    """An SMS event shaped like real Brevo's (`to` without `+`, `msg_status`, no `event`)."""
    return {
        "id": 26570,
        "to": to,
        "sms_count": 1,
        "credits_used": 1.5,
        "messageId": 1511882900176220,
        "remaining_credit": 11488.8,
        "msg_status": msg_status,
        "date": "2025-03-01 10:15:02",
        "type": "transactional",
        "reference": "ab1cde2fgh3i4jklmno",
        **extra,
    }
