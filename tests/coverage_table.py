"""The coverage table: for every canonical type, a payload in the seed guide's dialect and in real Brevo's.

Each row builds a payload for a given address so that a test can give every row, dialect and mode a
customer of its own, then check the canonical type and what the customer's view shows.
"""

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import JsonValue

from schemas.event_types import EventType as T
from tests.payloads import brevo_email, brevo_sms

Raw = dict[str, JsonValue]
Build = Callable[[str], Raw]


@dataclass(frozen=True)
class Row:
    """One canonical type, how each dialect sends it, and the view field that must show it."""

    name: str
    kind: T
    seed: Build | None
    brevo: Build | None
    channel: str  # "email" or "sms": which kind of address the row's customer has
    view_path: tuple[str, ...]  # where the customer's view counts it (empty: checked otherwise)


def _seed(event: str, **extra: JsonValue) -> Build:
    return lambda email: {
        "event": event,
        "email": email,
        "message-id": f"<{event}@seed>",
        "ts": 1700000000,
        **extra,
    }


def _brevo(event: str, **extra: JsonValue) -> Build:
    return lambda email: brevo_email(event, email=email, **extra)


def _marketing(event: str, **extra: JsonValue) -> Build:
    def build(email: str) -> Raw:
        return {
            "id": 123,
            "camp_id": 45,
            "email": email,
            "campaign name": "Spring",
            "date_sent": "2020-10-09 00:00:00",
            "date_event": "2020-10-09 00:00:00",
            "event": event,
            "tag": "",
            "ts_sent": 1604933619,
            "ts_event": 1604933737,
            "ts": 1604937337,
            **extra,
        }

    return build


def _seed_sms(event: str, **extra: JsonValue) -> Build:
    return lambda phone: {
        "event": event,
        "phone": phone,
        "message-id": f"sms-{event}",
        "ts": 1700000000,
        **extra,
    }


def _brevo_sms(status: str, **extra: JsonValue) -> Build:
    return lambda phone: brevo_sms(status, to=phone.removeprefix("+"), **extra)


def _contact(event: str, **extra: JsonValue) -> Build:
    return lambda email: {
        "event": event,
        "email": email,
        "key": "k",
        "ts": 1700000000,
        "list_id": [12],
        **extra,
    }


ROWS: list[Row] = [
    Row("sent", T.EMAIL_SENT, _seed("sent"), _brevo("request"), "email", ("channels", "email", "counts", "sent")),
    Row("delivered", T.EMAIL_DELIVERED, _seed("delivered"), _brevo("delivered"), "email",
        ("channels", "email", "counts", "delivered")),
    Row("opened", T.EMAIL_OPENED, _seed("opened"), _brevo("opened"), "email", ("channels", "email", "counts", "opened")),
    Row("unique_opened", T.EMAIL_UNIQUE_OPENED, None, _brevo("unique_opened"), "email",
        ("channels", "email", "counts", "unique_opened")),
    Row("proxy_open", T.EMAIL_PROXY_OPENED, None, _brevo("proxy_open"), "email",
        ("channels", "email", "counts", "proxy_opened")),
    Row("unique_proxy_open", T.EMAIL_UNIQUE_PROXY_OPENED, None, _brevo("unique_proxy_open"), "email",
        ("channels", "email", "counts", "proxy_opened")),
    Row("clicked", T.EMAIL_CLICKED, _seed("clicked", link="https://x.example/rewards"),
        _brevo("click", link="https://x.example/rewards"), "email", ("channels", "email", "counts", "clicked")),
    Row("soft_bounce", T.EMAIL_SOFT_BOUNCED, _seed("bounced", reason="full"), _brevo("soft_bounce", reason="full"),
        "email", ("channels", "email", "counts", "soft_bounced")),
    Row("deferred", T.EMAIL_SOFT_BOUNCED, None, _brevo("deferred"), "email", ("channels", "email", "counts", "soft_bounced")),
    Row("hard_bounce", T.EMAIL_HARD_BOUNCED, _seed("hard_bounced", reason="550"), _brevo("hard_bounce", reason="550"),
        "email", ("channels", "email", "counts", "hard_bounced")),
    Row("invalid_email", T.EMAIL_HARD_BOUNCED, None, _brevo("invalid_email"), "email",
        ("channels", "email", "counts", "hard_bounced")),
    Row("blocked", T.EMAIL_HARD_BOUNCED, None, _brevo("blocked"), "email", ("channels", "email", "counts", "hard_bounced")),
    Row("spam", T.EMAIL_SPAM, _seed("spam"), _brevo("complaint"), "email", ("channels", "email", "counts", "spam")),
    Row("unsubscribed", T.EMAIL_UNSUBSCRIBED, _seed("unsubscribed"), _brevo("unsubscribed"), "email",
        ("channels", "email", "counts", "unsubscribed")),
    Row("error", T.EMAIL_ERROR, None, _brevo("error", reason="x"), "email", ("channels", "email", "counts", "errors")),
    Row("marketing_delivered", T.EMAIL_DELIVERED, None, _marketing("delivered"), "email",
        ("channels", "email", "counts", "delivered")),
    Row("marketing_click", T.EMAIL_CLICKED, None, _marketing("click", URL="https://x.example/loyalty"), "email",
        ("channels", "email", "counts", "clicked")),
    Row("marketing_hard_bounce", T.EMAIL_HARD_BOUNCED, None, _marketing("hard_bounced"), "email",
        ("channels", "email", "counts", "hard_bounced")),
    Row("marketing_soft_bounce", T.EMAIL_SOFT_BOUNCED, None, _marketing("soft_bounced"), "email",
        ("channels", "email", "counts", "soft_bounced")),
    Row("marketing_unsubscribed", T.EMAIL_UNSUBSCRIBED, None, _marketing("unsubscribed", list_id=[3]), "email",
        ("channels", "email", "counts", "unsubscribed")),
    Row("sms_sent", T.SMS_SENT, _seed_sms("sms_sent"), _brevo_sms("sent"), "sms", ("channels", "sms", "counts", "sent")),
    Row("sms_delivered", T.SMS_DELIVERED, _seed_sms("sms_delivered"), _brevo_sms("delivered"), "sms",
        ("channels", "sms", "counts", "delivered")),
    Row("sms_failed", T.SMS_FAILED, _seed_sms("sms_failed", reason="unreachable"), _brevo_sms("hard_bounce"), "sms",
        ("channels", "sms", "counts", "failed")),
    Row("sms_soft_bounce", T.SMS_FAILED, None, _brevo_sms("soft_bounce"), "sms", ("channels", "sms", "counts", "failed")),
    Row("sms_reply", T.SMS_REPLIED, _seed_sms("sms_reply", text="Where is my order?"),
        _brevo_sms("reply", text="Where is my order?"), "sms", ("channels", "sms", "counts", "replies")),
    Row("contact_created", T.CONTACT_CREATED, _contact("contact_created"), None, "email", ()),
    Row("contact_updated", T.CONTACT_UPDATED, _contact("contact_updated"), _contact("contact_updated", content=[]), "email",
        ()),
    Row("list_addition", T.CONTACT_LIST_ADDITION, _contact("list_addition"), _contact("list_addition"), "email", ()),
]  # fmt: skip

# Events that are accepted and kept but never folded, or keyed by something other than a customer.
CAMPAIGN_EVENTS: list[tuple[T, Raw]] = [
    (
        T.CAMPAIGN_STARTED,
        {"event": "campaign_started", "camp_id": 45, "campaign name": "Spring", "ts": 1700000000},
    ),
    (T.CAMPAIGN_PAUSED, {"event": "campaign_paused", "camp_id": 45, "ts": 1700000100}),
    (T.CAMPAIGN_FINISHED, {"event": "campaign_finished", "camp_id": 45, "ts": 1700000200}),
]
UNKNOWN_EVENTS: list[Raw] = [
    {"event": "something_brevo_adds_later", "email": "someone@example.com", "ts": 1700000000},
    {"event": "inbound_email_processed", "uuid": "x"},
]
INBOUND_BODY: Raw = {"items": [{"Uuid": ["u-1"], "MessageId": "<m@x>", "From": {"Address": "a@example.com"}}]}


def address_for(row: Row, dialect: str, mode: str, index: int) -> str:
    """A customer of the row's own, per dialect and mode: an email, or a phone in E.164."""
    if row.channel == "sms":
        return f"+3361{index:03d}{['seed', 'brevo'].index(dialect)}{['single', 'batch'].index(mode)}00"
    return f"{row.name}.{dialect}.{mode}@example.com"
