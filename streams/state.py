"""A customer's state as the fold keeps it per address, and its byte encoding.

Times are epoch milliseconds of the events' `occurred_at`. A status that can flip both ways keeps the
event time of its last change (`*_at`) so that an older event arriving late cannot undo a newer one.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

# How many recent event ids a customer's state remembers to drop duplicates. Brevo retries within
# about 11 hours and a restarted worker re-reads only uncommitted offsets, so a customer would need
# more events than this inside that window for a duplicate to slip past.
SEEN_WINDOW = 1024
# How many alerts and support messages a customer's state keeps (the feeds show the newest).
FEED_WINDOW = 50

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class EmailChannel(BaseModel):
    """Email counts, last-seen times and deliverability."""

    model_config = _FROZEN

    sent: int = 0
    delivered: int = 0
    opens: int = 0
    unique_opens: int = 0
    proxy_opens: int = 0
    clicks: int = 0
    soft_bounces: int = 0
    hard_bounces: int = 0
    spam_reports: int = 0
    unsubscribes: int = 0
    errors: int = 0
    last_sent_at: int | None = None
    last_delivered_at: int | None = None
    last_opened_at: int | None = None
    last_clicked_at: int | None = None
    last_bounce_at: int | None = None
    last_spam_at: int | None = None
    last_unsubscribed_at: int | None = None
    last_hard_bounce_at: int | None = None
    hard_bounce_reason: str | None = None

    @property
    def invalid(self) -> bool:
        """Invalid when the newest hard bounce is not older than the newest delivery, open or click."""
        if self.last_hard_bounce_at is None:
            return False
        proofs = [
            t for t in (self.last_delivered_at, self.last_opened_at, self.last_clicked_at) if t is not None
        ]
        return not proofs or self.last_hard_bounce_at >= max(proofs)

    @property
    def invalid_reason(self) -> str | None:
        """The reason of the hard bounce that made the address invalid."""
        return self.hard_bounce_reason if self.invalid else None


class SmsChannel(BaseModel):
    """SMS counts, last-seen times, delivery status and subscription."""

    model_config = _FROZEN

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    replies: int = 0
    last_sent_at: int | None = None
    last_delivered_at: int | None = None
    last_failed_at: int | None = None
    last_reply_at: int | None = None
    last_failure_reason: str | None = None
    last_stop_at: int | None = None

    @property
    def failing(self) -> bool:
        """Failing when the newest failure is not older than the newest delivery."""
        if self.last_failed_at is None:
            return False
        return self.last_delivered_at is None or self.last_failed_at >= self.last_delivered_at

    @property
    def failure_reason(self) -> str | None:
        """Why the newest failure happened, while the number is failing."""
        return self.last_failure_reason if self.failing else None

    @property
    def subscribed(self) -> bool:
        """Subscribed until the customer answered STOP."""
        return self.last_stop_at is None


class CampaignCounts(BaseModel):
    """One customer's engagement with one campaign (by `camp_id`) or tag."""

    model_config = _FROZEN

    name: str | None = None
    delivered: int = 0
    opens: int = 0
    clicks: int = 0
    bounces: int = 0
    spam: int = 0
    unsubscribes: int = 0


class Alert(BaseModel):
    """A marketing alert raised by an event (a spam report)."""

    model_config = _FROZEN

    alert_id: str
    kind: str
    address: str
    at: int
    campaign: str | None = None


class InboxMessage(BaseModel):
    """An SMS reply forwarded to the support inbox."""

    model_config = _FROZEN

    message_id: str
    address: str
    at: int
    text: str


class CustomerState(BaseModel):
    """Everything the fold knows about one address (an email, or a phone in E.164)."""

    model_config = _FROZEN

    address: str
    kind: Literal["email", "phone"]
    email: str | None = None
    phone: str | None = None
    email_channel: EmailChannel = EmailChannel()
    sms: SmsChannel = SmsChannel()
    marketing_off_at: int | None = None
    marketing_on_at: int | None = None
    spam_reported: bool = False
    score: int = 0
    loyalty_engagements: int = 0
    rewards_visits: int = 0
    last_rewards_visit_at: int | None = None
    lists: tuple[int, ...] = ()
    linked_at: int | None = None
    contact_known: bool = False
    last_contact_at: int | None = None
    last_deleted_at: int | None = None
    campaigns: dict[str, CampaignCounts] = {}
    alerts: tuple[Alert, ...] = ()
    inbox: tuple[InboxMessage, ...] = ()
    seen: tuple[str, ...] = ()

    @property
    def marketing_enabled(self) -> bool:
        """Marketing email is on unless the newest consent change (spam, unsubscribe) turned it off."""
        if self.marketing_off_at is None:
            return True
        return self.marketing_on_at is not None and self.marketing_on_at > self.marketing_off_at

    @property
    def deleted(self) -> bool:
        """Deleted when the newest deletion is not older than the newest creation or update."""
        if self.last_deleted_at is None:
            return False
        return self.last_contact_at is None or self.last_deleted_at >= self.last_contact_at


def encode_state(state: CustomerState) -> bytes:
    """The state as compact JSON bytes, as stored in tables and changelogs."""
    return state.__pydantic_serializer__.to_json(state)


def decode_state(data: bytes) -> CustomerState:
    """A state read back from its JSON bytes."""
    return CustomerState.model_validate_json(data)


class CampaignState(BaseModel):
    """A campaign's lifecycle (started, paused, finished), kept under the key `campaign:<camp_id>`."""

    model_config = _FROZEN

    key: str
    camp_id: str
    name: str | None = None
    status: Literal["started", "paused", "finished"] | None = None
    status_at: int | None = None
    started_at: int | None = None
    paused_at: int | None = None
    finished_at: int | None = None
    seen: tuple[str, ...] = ()


CAMPAIGN_KEY_PREFIX = "campaign:"


def campaign_key(camp_id: str) -> str:
    """The table key of a campaign's lifecycle state."""
    return CAMPAIGN_KEY_PREFIX + camp_id


def encode_campaign(state: CampaignState) -> bytes:
    """The campaign state as compact JSON bytes."""
    return state.__pydantic_serializer__.to_json(state)


def decode_campaign(data: bytes) -> CampaignState:
    """A campaign state read back from its JSON bytes."""
    return CampaignState.model_validate_json(data)
