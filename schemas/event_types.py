"""Canonical event types and the one table that maps both Brevo dialects onto them."""

from enum import StrEnum


class EventType(StrEnum):
    """What happened, in one vocabulary for the seed guide's names and real Brevo's names."""

    EMAIL_SENT = "email.sent"
    EMAIL_DELIVERED = "email.delivered"
    EMAIL_OPENED = "email.opened"
    EMAIL_UNIQUE_OPENED = "email.unique_opened"
    EMAIL_PROXY_OPENED = "email.proxy_opened"
    EMAIL_UNIQUE_PROXY_OPENED = "email.unique_proxy_opened"
    EMAIL_CLICKED = "email.clicked"
    EMAIL_SOFT_BOUNCED = "email.soft_bounced"
    EMAIL_HARD_BOUNCED = "email.hard_bounced"
    EMAIL_SPAM = "email.spam"
    EMAIL_UNSUBSCRIBED = "email.unsubscribed"
    EMAIL_ERROR = "email.error"
    SMS_SENT = "sms.sent"
    SMS_DELIVERED = "sms.delivered"
    SMS_FAILED = "sms.failed"
    SMS_REPLIED = "sms.replied"
    CONTACT_CREATED = "contact.created"
    CONTACT_UPDATED = "contact.updated"
    CONTACT_DELETED = "contact.deleted"
    CONTACT_LIST_ADDITION = "contact.list_addition"
    CONTACT_LINKED = "contact.linked"  # derived: a contact event tied this phone to an email
    CAMPAIGN_STARTED = "campaign.started"
    CAMPAIGN_FINISHED = "campaign.finished"
    CAMPAIGN_PAUSED = "campaign.paused"
    UNKNOWN = "unknown"


T = EventType

# Email and contact names as they arrive in `event`: the seed guide's and real Brevo's side by side.
EMAIL_NAMES: dict[str, EventType] = {
    "request": T.EMAIL_SENT,  # Brevo
    "sent": T.EMAIL_SENT,  # seed / subscription name
    "delivered": T.EMAIL_DELIVERED,  # both
    "opened": T.EMAIL_OPENED,  # both
    "unique_opened": T.EMAIL_UNIQUE_OPENED,  # Brevo
    "proxy_open": T.EMAIL_PROXY_OPENED,  # Brevo (Apple Mail privacy)
    "unique_proxy_open": T.EMAIL_UNIQUE_PROXY_OPENED,  # Brevo (spelling unconfirmed)
    "unique_proxy_opened": T.EMAIL_UNIQUE_PROXY_OPENED,  # variant
    "proxy_opened": T.EMAIL_PROXY_OPENED,  # variant
    "clicked": T.EMAIL_CLICKED,  # seed
    "click": T.EMAIL_CLICKED,  # Brevo
    "bounced": T.EMAIL_SOFT_BOUNCED,  # seed
    "soft_bounce": T.EMAIL_SOFT_BOUNCED,  # Brevo transactional
    "soft_bounced": T.EMAIL_SOFT_BOUNCED,  # Brevo marketing (unconfirmed)
    "deferred": T.EMAIL_SOFT_BOUNCED,  # Brevo
    "hard_bounced": T.EMAIL_HARD_BOUNCED,  # seed, Brevo marketing (unconfirmed)
    "hard_bounce": T.EMAIL_HARD_BOUNCED,  # Brevo transactional
    "invalid_email": T.EMAIL_HARD_BOUNCED,  # Brevo
    "blocked": T.EMAIL_HARD_BOUNCED,  # Brevo
    "spam": T.EMAIL_SPAM,  # seed, older Brevo
    "complaint": T.EMAIL_SPAM,  # Brevo
    "unsubscribed": T.EMAIL_UNSUBSCRIBED,  # both
    "error": T.EMAIL_ERROR,  # Brevo
    "contact_created": T.CONTACT_CREATED,  # seed
    "contact_updated": T.CONTACT_UPDATED,  # both
    "contact_deleted": T.CONTACT_DELETED,  # Brevo
    "list_addition": T.CONTACT_LIST_ADDITION,  # both
    "campaign_started": T.CAMPAIGN_STARTED,  # seed overview
    "campaign_finished": T.CAMPAIGN_FINISHED,  # seed overview
    "campaign_paused": T.CAMPAIGN_PAUSED,  # seed overview
}

# SMS names: the seed's `event` names and real Brevo's `msg_status` values.
SMS_NAMES: dict[str, EventType] = {
    "sms_sent": T.SMS_SENT,  # seed overview
    "sent": T.SMS_SENT,  # Brevo msg_status
    "accepted": T.SMS_SENT,  # Brevo msg_status (unconfirmed)
    "sms_delivered": T.SMS_DELIVERED,  # seed
    "delivered": T.SMS_DELIVERED,  # Brevo msg_status
    "sms_failed": T.SMS_FAILED,  # seed
    "soft_bounce": T.SMS_FAILED,  # Brevo msg_status
    "hard_bounce": T.SMS_FAILED,  # Brevo msg_status
    "failed": T.SMS_FAILED,  # variant
    "rejected": T.SMS_FAILED,  # variant
    "blocked": T.SMS_FAILED,  # variant
    "skip": T.SMS_FAILED,  # Brevo msg_status (unconfirmed)
    "sms_reply": T.SMS_REPLIED,  # seed
    "reply": T.SMS_REPLIED,  # Brevo (unconfirmed)
    "replied": T.SMS_REPLIED,  # variant
}

# Types whose events are keyed by a customer address and must carry one.
NEEDS_EMAIL = frozenset(t for t in EventType if t.value.startswith("email."))
NEEDS_PHONE = frozenset(t for t in EventType if t.value.startswith("sms."))
# Contact events are keyed by the contact's email, or by its phone when it has no email.
NEEDS_CONTACT = frozenset(t for t in EventType if t.value.startswith("contact."))
# Campaign lifecycle events are keyed by their campaign.
NEEDS_CAMPAIGN = frozenset(t for t in EventType if t.value.startswith("campaign."))
