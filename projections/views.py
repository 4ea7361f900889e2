"""The customer loyalty view: a pure function of the customer's engagement state."""

from typing import TypedDict

from schemas.event import from_epoch_ms
from streams.score import effective_opens
from streams.state import EngagementState


class EmailCounts(TypedDict):
    """How many emails were delivered, opened and clicked."""

    delivered: int
    opened: int
    unique_opened: int
    clicked: int


class LastSeen(TypedDict):
    """The latest event time of each kind, ISO 8601 UTC, or null."""

    delivered_at: str | None
    opened_at: str | None
    clicked_at: str | None


class LoyaltyView(TypedDict):
    """What services read about one customer."""

    address: str
    email: EmailCounts
    open_rate: float | None
    click_rate: float | None
    last_seen: LastSeen
    engagement_score: int


def _iso(ms: int | None) -> str | None:
    return None if ms is None else from_epoch_ms(ms).isoformat().replace("+00:00", "Z")


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def loyalty_view(state: EngagementState) -> LoyaltyView:
    """The loyalty view of one customer; rates are per delivered email, null before any delivery."""
    opened = effective_opens(state.opens, state.unique_opens)
    return {
        "address": state.address,
        "email": {
            "delivered": state.delivered,
            "opened": state.opens,
            "unique_opened": state.unique_opens,
            "clicked": state.clicks,
        },
        "open_rate": _rate(opened, state.delivered),
        "click_rate": _rate(state.clicks, state.delivered),
        "last_seen": {
            "delivered_at": _iso(state.last_delivered_at),
            "opened_at": _iso(state.last_opened_at),
            "clicked_at": _iso(state.last_clicked_at),
        },
        "engagement_score": state.score,
    }
