"""The fold: `fold(state, event) -> state`, pure, one small handler per canonical event type."""

from collections.abc import Callable
from dataclasses import replace

from schemas.event import CanonicalEvent, epoch_ms
from schemas.event_types import EventType
from streams.score import engagement_score
from streams.state import SEEN_WINDOW, EngagementState

Handler = Callable[[EngagementState, CanonicalEvent], EngagementState]


def initial_state(address: str) -> EngagementState:
    """The state of a customer no event has touched yet."""
    return EngagementState(address=address)


def fold(state: EngagementState, event: CanonicalEvent) -> EngagementState:
    """The state after one event; a duplicate or an event no handler folds changes nothing."""
    handler = HANDLERS.get(event.type)
    if handler is None or event.event_id in state.seen:
        return state
    folded = handler(state, event)
    return replace(folded, seen=(*state.seen, event.event_id)[-SEEN_WINDOW:])


def fold_all(state: EngagementState, events: list[CanonicalEvent]) -> EngagementState:
    """The state after each event in turn."""
    for event in events:
        state = fold(state, event)
    return state


def _latest(current: int | None, event: CanonicalEvent) -> int:
    moment = epoch_ms(event.occurred_at)
    return moment if current is None else max(current, moment)


def _rescored(state: EngagementState) -> EngagementState:
    return replace(state, score=engagement_score(state.opens, state.unique_opens, state.clicks))


def on_delivered(state: EngagementState, event: CanonicalEvent) -> EngagementState:
    """A delivery: one more delivered email, last delivery time moves forward."""
    return replace(
        state, delivered=state.delivered + 1, last_delivered_at=_latest(state.last_delivered_at, event)
    )


def on_opened(state: EngagementState, event: CanonicalEvent) -> EngagementState:
    """An open: counted, last open time moves forward, the score rises."""
    opened = replace(state, opens=state.opens + 1, last_opened_at=_latest(state.last_opened_at, event))
    return _rescored(opened)


def on_unique_opened(state: EngagementState, event: CanonicalEvent) -> EngagementState:
    """A first open of an email: counted apart so a double subscription does not count it twice."""
    opened = replace(
        state, unique_opens=state.unique_opens + 1, last_opened_at=_latest(state.last_opened_at, event)
    )
    return _rescored(opened)


def on_clicked(state: EngagementState, event: CanonicalEvent) -> EngagementState:
    """A click: counted, last click time moves forward, the score rises more than for an open."""
    clicked = replace(state, clicks=state.clicks + 1, last_clicked_at=_latest(state.last_clicked_at, event))
    return _rescored(clicked)


HANDLERS: dict[EventType, Handler] = {
    EventType.EMAIL_DELIVERED: on_delivered,
    EventType.EMAIL_OPENED: on_opened,
    EventType.EMAIL_UNIQUE_OPENED: on_unique_opened,
    EventType.EMAIL_CLICKED: on_clicked,
}
