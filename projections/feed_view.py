"""Feeds read across customers: marketing alerts, the support inbox and the suppression list."""

from typing import Literal

from pydantic import BaseModel

from domain.state import Alert, CustomerState, InboxMessage
from projections.common import FROZEN, iso, latest

SuppressionReason = Literal["invalid", "spam_reported", "unsubscribed"]


class AlertView(BaseModel):
    """A marketing alert (a spam report) for the marketing team."""

    model_config = FROZEN

    alert_id: str
    kind: str
    address: str
    at: str
    campaign: str | None


class AlertFeed(BaseModel):
    """Marketing alerts, newest first."""

    model_config = FROZEN

    alerts: list[AlertView]


class InboxView(BaseModel):
    """An SMS reply for the support team."""

    model_config = FROZEN

    message_id: str
    address: str
    at: str
    text: str


class InboxFeed(BaseModel):
    """Support messages, newest first."""

    model_config = FROZEN

    messages: list[InboxView]


class Suppression(BaseModel):
    """An address that must not be emailed (`channel` email) or texted (`channel` sms), and why."""

    model_config = FROZEN

    address: str
    channel: Literal["email", "sms"]
    reasons: list[SuppressionReason]
    invalid_reason: str | None
    since: str | None


class SuppressionList(BaseModel):
    """Every suppressed address, by channel then address."""

    model_config = FROZEN

    suppressions: list[Suppression]


def alert_view(alert: Alert) -> AlertView:
    """An alert as served."""
    at = iso(alert.at) or ""
    return AlertView(
        alert_id=alert.alert_id, kind=alert.kind, address=alert.address, at=at, campaign=alert.campaign
    )


def inbox_view(message: InboxMessage) -> InboxView:
    """A support message as served."""
    at = iso(message.at) or ""
    return InboxView(message_id=message.message_id, address=message.address, at=at, text=message.text)


def suppression_of(state: CustomerState) -> Suppression | None:
    """Why this address must not be contacted on its own channel, or None when it may be.

    An email is suppressed when it hard-bounced (invalid), was reported as spam, or has marketing off;
    a phone when it unsubscribed from SMS. Deleted customers are never listed.
    """
    if state.deleted:
        return None
    if state.kind == "phone":
        if state.sms.subscribed:
            return None
        since = iso(state.sms.last_stop_at)
        return Suppression(
            address=state.address, channel="sms", reasons=["unsubscribed"], invalid_reason=None, since=since
        )
    channel = state.email_channel
    reasons: list[SuppressionReason] = []
    times: list[int | None] = []
    if channel.invalid:
        reasons.append("invalid")
        times.append(channel.last_hard_bounce_at)
    if state.spam_reported:
        reasons.append("spam_reported")
        times.append(channel.last_spam_at)
    if not state.marketing_enabled:
        reasons.append("unsubscribed")
        times.append(state.marketing_off_at)
    if not reasons:
        return None
    return Suppression(
        address=state.address,
        channel="email",
        reasons=reasons,
        invalid_reason=channel.invalid_reason,
        since=iso(latest(*times)),
    )


def merged_alerts(states: list[CustomerState]) -> list[Alert]:
    """The alerts of the states, each once, newest first (then by id)."""
    unique = {a.alert_id: a for s in reversed(states) for a in s.alerts}
    return sorted(unique.values(), key=lambda a: (-a.at, a.alert_id))


def merged_inbox(states: list[CustomerState]) -> list[InboxMessage]:
    """The support messages of the states, each once, newest first (then by id)."""
    unique = {m.message_id: m for s in reversed(states) for m in s.inbox}
    return sorted(unique.values(), key=lambda m: (-m.at, m.message_id))
