"""The projections' response models and the pure functions that build them from folded states.

Every view is a pure function of the states it is given: no clock, no randomness.
"""

from projections.campaign_view import CampaignList, CampaignStats, campaign_stats
from projections.common import ErrorBody, iso, rate
from projections.customer_view import (
    Channels,
    CustomerView,
    EmailChannelView,
    SmsChannelView,
    customer_view,
    email_status,
    marketing_enabled,
    preferred_channel,
    sms_status,
)
from projections.feed_view import (
    AlertFeed,
    AlertView,
    InboxFeed,
    InboxView,
    Suppression,
    SuppressionList,
    alert_view,
    inbox_view,
    suppression_of,
)

__all__ = [
    "AlertFeed",
    "AlertView",
    "CampaignList",
    "CampaignStats",
    "Channels",
    "CustomerView",
    "EmailChannelView",
    "ErrorBody",
    "InboxFeed",
    "InboxView",
    "SmsChannelView",
    "Suppression",
    "SuppressionList",
    "alert_view",
    "campaign_stats",
    "customer_view",
    "email_status",
    "inbox_view",
    "iso",
    "marketing_enabled",
    "preferred_channel",
    "rate",
    "sms_status",
    "suppression_of",
]
