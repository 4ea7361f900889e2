"""The campaign fold: a campaign's lifecycle (started, paused, finished) by event time, pure."""

from typing import Literal

from domain.events import FoldEvent
from domain.state import CampaignState, campaign_key
from schemas.event_types import EventType

STATUS: dict[EventType, Literal["started", "paused", "finished"]] = {
    EventType.CAMPAIGN_STARTED: "started",
    EventType.CAMPAIGN_PAUSED: "paused",
    EventType.CAMPAIGN_FINISHED: "finished",
}


def initial_campaign(camp_id: str) -> CampaignState:
    """The lifecycle of a campaign no event has touched yet."""
    return CampaignState(key=campaign_key(camp_id), camp_id=camp_id)


def apply_campaign(state: CampaignState, event: FoldEvent) -> bool:
    """Brings a lifecycle the caller owns up to date in place; False when the event changes nothing."""
    status = STATUS.get(event.type)
    if status is None:
        return False
    at = event.at
    if status == "started":
        state.started_at = max(at, state.started_at or at)
    elif status == "paused":
        state.paused_at = max(at, state.paused_at or at)
    else:
        state.finished_at = max(at, state.finished_at or at)
    state.name = state.name or event.campaign_name
    if state.status_at is None or at >= state.status_at:
        state.status, state.status_at = status, at
    return True


def fold_campaign(state: CampaignState, event: FoldEvent) -> CampaignState:
    """The lifecycle after one event (the newest status by event time wins); `state` is left as it was."""
    after = state.copy()
    return after if apply_campaign(after, event) else state
