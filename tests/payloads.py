"""Brevo payloads in both dialects, as test data shared by the suites.

`brevo_email` lives in `samples.brevo`, which the benchmarks use too: they do not import the tests.
"""

from pydantic import JsonValue

from samples.brevo import Raw, brevo_email

__all__ = ["Raw", "brevo_email", "brevo_sms", "seed_email"]


def seed_email(event: str, email: str = "Jane.Doe@Example.com", **extra: JsonValue) -> Raw:
    """An email event shaped like the seed guide's examples."""
    return {"event": event, "email": email, "message-id": f"seed-{event}-1", "ts": 1640995200, **extra}


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
