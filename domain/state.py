"""A customer's state as the fold keeps it per address, and its byte encoding.

Times are epoch milliseconds of the events' `occurred_at`. A status that can flip both ways keeps the
event time of its last change (`*_at`) so that an older event arriving late cannot undo a newer one.

States are plain slotted dataclasses: the batch fold decodes a key's state once per batch, changes
that private copy in place for each of the key's events, and encodes it once (see `domain.batch`).
`copy()` gives an independent copy for callers that keep the original (the pure `step`).
Duplicate detection lives beside the state (`domain.dedup`), so a state's size does not grow with
its event count.
"""

import copy as _copy
import struct
from dataclasses import dataclass, field
from typing import Literal

import orjson
from pydantic import TypeAdapter

# How many alerts and support messages a customer's state keeps (the feeds show the newest).
FEED_WINDOW = 50


@dataclass(slots=True)
class EmailChannel:
    """Email counts, last-seen times and deliverability."""

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


@dataclass(slots=True)
class SmsChannel:
    """SMS counts, last-seen times, delivery status and subscription."""

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


@dataclass(slots=True)
class CampaignCounts:
    """One customer's engagement with one campaign (by `camp_id`) or tag."""

    name: str | None = None
    delivered: int = 0
    opens: int = 0
    clicks: int = 0
    bounces: int = 0
    spam: int = 0
    unsubscribes: int = 0


@dataclass(frozen=True, slots=True)
class Alert:
    """A marketing alert raised by an event (a spam report)."""

    alert_id: str
    kind: str
    address: str
    at: int
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """An SMS reply forwarded to the support inbox."""

    message_id: str
    address: str
    at: int
    text: str


@dataclass(slots=True)
class CustomerState:
    """Everything the fold knows about one address (an email, or a phone in E.164)."""

    address: str
    kind: Literal["email", "phone"]
    email: str | None = None
    phone: str | None = None
    email_channel: EmailChannel = field(default_factory=EmailChannel)
    sms: SmsChannel = field(default_factory=SmsChannel)
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
    campaigns: dict[str, CampaignCounts] = field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()
    inbox: tuple[InboxMessage, ...] = ()
    dead_letters: tuple[str, ...] = ()  # ids of its events the fold set aside, not folded since

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

    def copy(self) -> "CustomerState":
        """An independent copy: changing it in place leaves this state as it is."""
        twin = _copy.copy(self)
        twin.email_channel = _copy.copy(self.email_channel)
        twin.sms = _copy.copy(self.sms)
        twin.campaigns = {key: _copy.copy(counts) for key, counts in self.campaigns.items()}
        return twin


CAMPAIGN_KEY_PREFIX = "campaign:"


@dataclass(slots=True)
class CampaignState:
    """A campaign's lifecycle (started, paused, finished), kept under the key `campaign:<camp_id>`."""

    key: str
    camp_id: str
    name: str | None = None
    status: Literal["started", "paused", "finished"] | None = None
    status_at: int | None = None
    started_at: int | None = None
    paused_at: int | None = None
    finished_at: int | None = None

    def copy(self) -> "CampaignState":
        """An independent copy."""
        return _copy.copy(self)


def campaign_key(camp_id: str) -> str:
    """The table key of a campaign's lifecycle state."""
    return CAMPAIGN_KEY_PREFIX + camp_id


# -- encoding

_CUSTOMER = TypeAdapter(CustomerState)
_CAMPAIGN = TypeAdapter(CampaignState)
# A stored state may carry the log position of the last event folded into it: this marker byte,
# the offset as 8 bytes big-endian, then the JSON. Plain JSON (from `encode_state`) starts with "{".
_TRACKED = b"\x01"
_OFFSET = struct.Struct(">q")
_HEADER = len(_TRACKED) + _OFFSET.size


def canonical_state(state: CustomerState) -> bytes:
    """The state as JSON with every object's keys sorted: equal states, equal bytes (for digests)."""
    return orjson.dumps(_plain(state), option=orjson.OPT_SORT_KEYS)


def encode_state(state: CustomerState) -> bytes:
    """The state as compact JSON bytes: `orjson.dumps(state)`, byte for byte.

    orjson reads a slotted dataclass field by field through generic attribute lookups; the same
    fields gathered into dicts first (`_plain`) serialize three times faster, in the same order.
    """
    return orjson.dumps(_plain(state))


def _plain(state: CustomerState) -> dict[str, object]:
    """The state's fields as dicts, in declaration order (alerts and inbox, rare, stay dataclasses)."""
    channel = state.email_channel
    sms = state.sms
    return {
        "address": state.address,
        "kind": state.kind,
        "email": state.email,
        "phone": state.phone,
        "email_channel": {
            "sent": channel.sent,
            "delivered": channel.delivered,
            "opens": channel.opens,
            "unique_opens": channel.unique_opens,
            "proxy_opens": channel.proxy_opens,
            "clicks": channel.clicks,
            "soft_bounces": channel.soft_bounces,
            "hard_bounces": channel.hard_bounces,
            "spam_reports": channel.spam_reports,
            "unsubscribes": channel.unsubscribes,
            "errors": channel.errors,
            "last_sent_at": channel.last_sent_at,
            "last_delivered_at": channel.last_delivered_at,
            "last_opened_at": channel.last_opened_at,
            "last_clicked_at": channel.last_clicked_at,
            "last_bounce_at": channel.last_bounce_at,
            "last_spam_at": channel.last_spam_at,
            "last_unsubscribed_at": channel.last_unsubscribed_at,
            "last_hard_bounce_at": channel.last_hard_bounce_at,
            "hard_bounce_reason": channel.hard_bounce_reason,
        },
        "sms": {
            "sent": sms.sent,
            "delivered": sms.delivered,
            "failed": sms.failed,
            "replies": sms.replies,
            "last_sent_at": sms.last_sent_at,
            "last_delivered_at": sms.last_delivered_at,
            "last_failed_at": sms.last_failed_at,
            "last_reply_at": sms.last_reply_at,
            "last_failure_reason": sms.last_failure_reason,
            "last_stop_at": sms.last_stop_at,
        },
        "marketing_off_at": state.marketing_off_at,
        "marketing_on_at": state.marketing_on_at,
        "spam_reported": state.spam_reported,
        "score": state.score,
        "loyalty_engagements": state.loyalty_engagements,
        "rewards_visits": state.rewards_visits,
        "last_rewards_visit_at": state.last_rewards_visit_at,
        "lists": state.lists,
        "linked_at": state.linked_at,
        "contact_known": state.contact_known,
        "last_contact_at": state.last_contact_at,
        "last_deleted_at": state.last_deleted_at,
        "campaigns": {
            key: {
                "name": counts.name,
                "delivered": counts.delivered,
                "opens": counts.opens,
                "clicks": counts.clicks,
                "bounces": counts.bounces,
                "spam": counts.spam,
                "unsubscribes": counts.unsubscribes,
            }
            for key, counts in state.campaigns.items()
        },
        "alerts": state.alerts,
        "inbox": state.inbox,
        "dead_letters": state.dead_letters,
    }


def decode_state(data: bytes) -> CustomerState:
    """A state read back from its bytes (plain or tracked)."""
    return _CUSTOMER.validate_json(untracked(data))


def encode_campaign(state: CampaignState) -> bytes:
    """The campaign state as compact JSON bytes."""
    return orjson.dumps(state)


def decode_campaign(data: bytes) -> CampaignState:
    """A campaign state read back from its bytes (plain or tracked)."""
    return _CAMPAIGN.validate_json(untracked(data))


def tracked(offset: int, encoded: bytes) -> bytes:
    """An encoded state with the offset (in its partition) of the last event folded into it."""
    return _TRACKED + _OFFSET.pack(offset) + encoded


def untracked(data: bytes) -> bytes:
    """The encoded state without its position."""
    return data[_HEADER:] if data[:1] == _TRACKED else data


def offset_of(data: bytes) -> int:
    """The offset of the last event folded into a stored state; -1 when it carries none."""
    return _OFFSET.unpack_from(data, 1)[0] if data[:1] == _TRACKED else -1
