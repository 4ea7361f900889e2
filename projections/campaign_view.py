"""Campaign stats: a campaign's (or tag's) counts summed over customers, with its lifecycle."""

from typing import Literal

from pydantic import BaseModel

from domain.state import CampaignCounts, CampaignState
from projections.common import FROZEN, iso, rate

TAG_PREFIX = "tag:"


class CampaignStats(BaseModel):
    """One campaign (`key` is its `camp_id`) or tag (`key` is `tag:<name>`); rates per delivered email."""

    model_config = FROZEN

    key: str
    camp_id: str | None
    tag: str | None
    name: str | None
    status: Literal["started", "paused", "finished"] | None
    status_at: str | None
    delivered: int
    opens: int
    clicks: int
    bounces: int
    spam: int
    unsubscribes: int
    open_rate: float | None
    click_rate: float | None


class CampaignList(BaseModel):
    """Every campaign and tag, by key."""

    model_config = FROZEN

    campaigns: list[CampaignStats]


def campaign_stats(key: str, counts_sum: CampaignCounts, lifecycle: CampaignState | None) -> CampaignStats:
    """The stats of a campaign or tag from its counts summed over customers and its lifecycle, if known."""
    tag = key.removeprefix(TAG_PREFIX) if key.startswith(TAG_PREFIX) else None
    return CampaignStats(
        key=key,
        camp_id=None if tag is not None else key,
        tag=tag,
        name=(lifecycle.name if lifecycle else None) or counts_sum.name,
        status=lifecycle.status if lifecycle else None,
        status_at=iso(lifecycle.status_at) if lifecycle else None,
        delivered=counts_sum.delivered,
        opens=counts_sum.opens,
        clicks=counts_sum.clicks,
        bounces=counts_sum.bounces,
        spam=counts_sum.spam,
        unsubscribes=counts_sum.unsubscribes,
        open_rate=rate(counts_sum.opens, counts_sum.delivered),
        click_rate=rate(counts_sum.clicks, counts_sum.delivered),
    )
