"""The merged loyalty view of one customer: its email-keyed and phone-keyed states, read together.

A contact event links an email to a phone: the email-keyed state learns the phone and the phone-keyed
state learns the email. Email data lives in the email-keyed state, SMS data in the phone-keyed state
(SMS events are always keyed by phone, before and after the link).
"""

from typing import Any, Literal

import orjson
from pydantic import BaseModel

from domain.score import effective_opens, tier_for
from domain.state import Alert, CustomerState, EmailChannel, InboxMessage, SmsChannel
from projections.common import FROZEN, iso, latest, rate
from projections.feed_view import AlertView, InboxView, merged_alerts, merged_inbox

EmailStatus = Literal["active", "invalid", "spam_reported", "unsubscribed", "none"]
SmsStatus = Literal["ok", "failing", "unsubscribed", "none"]
Channel = Literal["email", "sms"]


class EmailCounts(BaseModel):
    """How many emails of each outcome."""

    model_config = FROZEN

    sent: int
    delivered: int
    opened: int
    unique_opened: int
    proxy_opened: int
    clicked: int
    soft_bounced: int
    hard_bounced: int
    spam: int
    unsubscribed: int
    errors: int


class EmailLastSeen(BaseModel):
    """The latest email event time of each kind (ISO-8601 UTC), or null."""

    model_config = FROZEN

    sent_at: str | None
    delivered_at: str | None
    opened_at: str | None
    clicked_at: str | None
    bounced_at: str | None
    spam_at: str | None
    unsubscribed_at: str | None


class EmailChannelView(BaseModel):
    """The email channel: status, counts, rates per delivered email (null before any delivery)."""

    model_config = FROZEN

    status: EmailStatus
    counts: EmailCounts
    open_rate: float | None
    click_rate: float | None
    last_seen: EmailLastSeen
    invalid_reason: str | None


class SmsCounts(BaseModel):
    """How many SMS of each outcome."""

    model_config = FROZEN

    sent: int
    delivered: int
    failed: int
    replies: int


class SmsLastSeen(BaseModel):
    """The latest SMS event time of each kind (ISO-8601 UTC), or null."""

    model_config = FROZEN

    sent_at: str | None
    delivered_at: str | None
    failed_at: str | None
    replied_at: str | None


class SmsChannelView(BaseModel):
    """The SMS channel: status, counts, subscription."""

    model_config = FROZEN

    status: SmsStatus
    counts: SmsCounts
    last_seen: SmsLastSeen
    failure_reason: str | None
    subscribed: bool


class Channels(BaseModel):
    """Both channels of a customer."""

    model_config = FROZEN

    email: EmailChannelView
    sms: SmsChannelView


class CampaignCountsView(BaseModel):
    """A customer's engagement with one campaign or tag."""

    model_config = FROZEN

    name: str | None
    delivered: int
    opens: int
    clicks: int
    bounces: int
    spam: int
    unsubscribes: int


class CustomerView(BaseModel):
    """What services read about one customer (its email and phone merged)."""

    model_config = FROZEN

    email: str | None
    phone: str | None
    channels: Channels
    marketing_enabled: bool
    spam_reported: bool
    contact_known: bool
    engagement_score: int
    tier: str
    preferred_channel: Channel | None
    rewards_visits: int
    last_rewards_visit_at: str | None
    loyalty_engagements: int
    lists: list[int]
    campaigns: dict[str, CampaignCountsView]
    alerts: list[AlertView]
    inbox: list[InboxView]
    dead_lettered: int  # its events the fold set aside (`tajo-events dlq`), not folded since


def split(
    primary: CustomerState, linked: CustomerState | None
) -> tuple[CustomerState | None, CustomerState | None]:
    """The (email-keyed, phone-keyed) states among the two, either possibly None."""
    states = [primary] if linked is None or linked.kind == primary.kind else [primary, linked]
    email = next((s for s in states if s.kind == "email"), None)
    phone = next((s for s in states if s.kind == "phone"), None)
    return email, phone


def email_status(
    address: str | None, state: CustomerState | None, marketing: bool, spam: bool
) -> EmailStatus:
    """`none` without an email; else invalid, spam_reported, unsubscribed (marketing off) or active."""
    if address is None:
        return "none"
    if state is not None and state.email_channel.invalid:
        return "invalid"
    if spam:
        return "spam_reported"
    return "active" if marketing else "unsubscribed"


def sms_status(address: str | None, state: CustomerState | None) -> SmsStatus:
    """`none` without a phone; else unsubscribed, failing or ok."""
    if address is None:
        return "none"
    if state is None:
        return "ok"
    if not state.sms.subscribed:
        return "unsubscribed"
    return "failing" if state.sms.failing else "ok"


def preferred_channel(email: EmailStatus, sms: SmsStatus) -> Channel | None:
    """Email when it works and may be used, else SMS when it works and may be used, else None."""
    if email == "active":
        return "email"
    return "sms" if sms == "ok" else None


def marketing_enabled(states: list[CustomerState]) -> bool:
    """On unless the newest opt-out of either state is not older than the newest opt-in of either."""
    off = latest(*(s.marketing_off_at for s in states))
    on = latest(*(s.marketing_on_at for s in states))
    return off is None or (on is not None and on > off)


# The view is built as the plain JSON document it is served as: no model is constructed and dumped
# per read (that cost some 65 us a customer, most of a read). `customer_view` validates the same
# document into `CustomerView`, so the model stays the schema of the document and the typed API.
Document = dict[str, Any]
_NO_EMAIL = EmailChannel()
_NO_SMS = SmsChannel()


def _email_channel(state: CustomerState | None, status: EmailStatus) -> Document:
    channel = _NO_EMAIL if state is None else state.email_channel
    return {
        "status": status,
        "counts": {
            "sent": channel.sent,
            "delivered": channel.delivered,
            "opened": channel.opens,
            "unique_opened": channel.unique_opens,
            "proxy_opened": channel.proxy_opens,
            "clicked": channel.clicks,
            "soft_bounced": channel.soft_bounces,
            "hard_bounced": channel.hard_bounces,
            "spam": channel.spam_reports,
            "unsubscribed": channel.unsubscribes,
            "errors": channel.errors,
        },
        "open_rate": rate(effective_opens(channel.opens, channel.unique_opens), channel.delivered),
        "click_rate": rate(channel.clicks, channel.delivered),
        "last_seen": {
            "sent_at": iso(channel.last_sent_at),
            "delivered_at": iso(channel.last_delivered_at),
            "opened_at": iso(channel.last_opened_at),
            "clicked_at": iso(channel.last_clicked_at),
            "bounced_at": iso(channel.last_bounce_at),
            "spam_at": iso(channel.last_spam_at),
            "unsubscribed_at": iso(channel.last_unsubscribed_at),
        },
        "invalid_reason": channel.invalid_reason,
    }


def _sms_channel(state: CustomerState | None, status: SmsStatus) -> Document:
    sms = _NO_SMS if state is None else state.sms
    return {
        "status": status,
        "counts": {
            "sent": sms.sent,
            "delivered": sms.delivered,
            "failed": sms.failed,
            "replies": sms.replies,
        },
        "last_seen": {
            "sent_at": iso(sms.last_sent_at),
            "delivered_at": iso(sms.last_delivered_at),
            "failed_at": iso(sms.last_failed_at),
            "replied_at": iso(sms.last_reply_at),
        },
        "failure_reason": sms.failure_reason,
        "subscribed": sms.subscribed,
    }


def _campaigns(states: list[CustomerState]) -> Document:
    if len(states) == 1:  # the common case: nothing to merge
        return {
            key: {
                "name": c.name or None,
                "delivered": c.delivered,
                "opens": c.opens,
                "clicks": c.clicks,
                "bounces": c.bounces,
                "spam": c.spam,
                "unsubscribes": c.unsubscribes,
            }
            for key, c in sorted(states[0].campaigns.items())
        }
    merged: Document = {}
    for key in sorted({k for s in states for k in s.campaigns}):
        parts = [s.campaigns[key] for s in states if key in s.campaigns]
        merged[key] = {
            "name": next((p.name for p in parts if p.name), None),
            "delivered": sum(p.delivered for p in parts),
            "opens": sum(p.opens for p in parts),
            "clicks": sum(p.clicks for p in parts),
            "bounces": sum(p.bounces for p in parts),
            "spam": sum(p.spam for p in parts),
            "unsubscribes": sum(p.unsubscribes for p in parts),
        }
    return merged


def _alert(alert: Alert) -> Document:
    """An alert as `AlertView` serves it."""
    return {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "address": alert.address,
        "at": iso(alert.at) or "",
        "campaign": alert.campaign,
    }


def _message(message: InboxMessage) -> Document:
    """A support message as `InboxView` serves it."""
    return {
        "message_id": message.message_id,
        "address": message.address,
        "at": iso(message.at) or "",
        "text": message.text,
    }


def customer_document(primary: CustomerState, linked: CustomerState | None) -> Document:
    """The loyalty view of a customer, as the JSON document served (the fields of `CustomerView`).

    Email data comes from the email-keyed state, SMS data from the phone-keyed state; campaign counts,
    rewards visits, loyalty engagements, lists, alerts and inbox are summed (or united) over both.
    """
    email_state, phone_state = split(primary, linked)
    states = [s for s in (email_state, phone_state) if s is not None]
    email = email_state.address if email_state else next((s.email for s in states if s.email), None)
    phone = phone_state.address if phone_state else next((s.phone for s in states if s.phone), None)
    marketing = marketing_enabled(states)
    spam = any(s.spam_reported for s in states)
    e_status = email_status(email, email_state, marketing, spam)
    s_status = sms_status(phone, phone_state)
    score = max(s.score for s in states)
    return {
        "email": email,
        "phone": phone,
        "channels": {
            "email": _email_channel(email_state, e_status),
            "sms": _sms_channel(phone_state, s_status),
        },
        "marketing_enabled": marketing,
        "spam_reported": spam,
        "contact_known": any(s.contact_known for s in states),
        "engagement_score": score,
        "tier": tier_for(score),
        "preferred_channel": preferred_channel(e_status, s_status),
        "rewards_visits": sum(s.rewards_visits for s in states),
        "last_rewards_visit_at": iso(latest(*(s.last_rewards_visit_at for s in states))),
        "loyalty_engagements": sum(s.loyalty_engagements for s in states),
        "lists": sorted({i for s in states for i in s.lists}),
        "campaigns": _campaigns(states),
        "alerts": [_alert(a) for a in merged_alerts(states)] if any(s.alerts for s in states) else [],
        "inbox": [_message(m) for m in merged_inbox(states)] if any(s.inbox for s in states) else [],
        "dead_lettered": sum(len(s.dead_letters) for s in states),
    }


def customer_json(primary: CustomerState, linked: CustomerState | None) -> bytes:
    """The loyalty view of a customer, encoded as served."""
    return orjson.dumps(customer_document(primary, linked))


def customer_view(primary: CustomerState, linked: CustomerState | None) -> CustomerView:
    """The loyalty view of a customer from its state and, when linked, the state of its other address."""
    return CustomerView.model_validate(customer_document(primary, linked))
