"""Building canonical events for fold tests from Brevo payloads."""

from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
from pydantic import JsonValue

from schemas.brevo import canonicalize_all
from schemas.event import CanonicalEvent
from streams.actions import Action
from streams.fold import initial_state, step
from streams.state import CustomerState

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


def events_of(raw: dict[str, JsonValue]) -> list[CanonicalEvent]:
    """The canonical events of one raw payload."""
    return canonicalize_all(raw, RECEIVED)


def event_of(raw: dict[str, JsonValue]) -> CanonicalEvent:
    """The first canonical event of one raw payload."""
    return events_of(raw)[0]


def run(address: str, *raws: Mapping[str, object]) -> tuple[CustomerState, list[Action]]:
    """Folds the events of these payloads that are keyed by `address`; returns the state and all actions."""
    state = initial_state(address)
    actions: list[Action] = []
    for raw in raws:
        json: dict[str, JsonValue] = orjson.loads(orjson.dumps(raw))
        for event in events_of(json):
            if event.key == address:
                result = step(state, event)
                state = result.state
                actions.extend(result.actions)
    return state, actions
