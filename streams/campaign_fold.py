"""The campaign fold: a campaign's lifecycle (started, paused, finished) by event time, pure."""

from typing import Literal

from schemas.event import CanonicalEvent, epoch_ms
from schemas.event_types import EventType
from streams.payload import campaign_name
from streams.state import SEEN_WINDOW, CampaignState, campaign_key

STATUS: dict[EventType, Literal["started", "paused", "finished"]] = {
    EventType.CAMPAIGN_STARTED: "started",
    EventType.CAMPAIGN_PAUSED: "paused",
    EventType.CAMPAIGN_FINISHED: "finished",
}


def initial_campaign(camp_id: str) -> CampaignState:
    """The lifecycle of a campaign no event has touched yet."""
    return CampaignState(key=campaign_key(camp_id), camp_id=camp_id)


def fold_campaign(state: CampaignState, event: CanonicalEvent) -> CampaignState:
    """The lifecycle after one event: the newest status by event time wins; duplicates change nothing."""
    status = STATUS.get(event.type)
    if status is None or event.event_id in state.seen:
        return state
    at = epoch_ms(event.occurred_at)
    changes: dict[str, object] = {
        f"{status}_at": max(at, getattr(state, f"{status}_at") or at),
        "name": state.name or campaign_name(event),
        "seen": (*state.seen, event.event_id)[-SEEN_WINDOW:],
    }
    if state.status_at is None or at >= state.status_at:
        changes |= {"status": status, "status_at": at}
    return state.model_copy(update=changes)
