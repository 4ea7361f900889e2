"""Building canonical events for fold tests from Brevo payloads, and folding them as a log would."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import orjson
from pydantic import JsonValue

from domain.actions import Action
from domain.batch import BatchFold
from domain.fold import initial_state
from domain.state import CustomerState, decode_state
from eventlog.port import LoggedRecord
from schemas.brevo import canonicalize_all
from schemas.event import CanonicalEvent, encode_event

RECEIVED = datetime(2026, 1, 1, tzinfo=UTC)


def events_of(raw: dict[str, JsonValue]) -> list[CanonicalEvent]:
    """The canonical events of one raw payload."""
    return canonicalize_all(raw, RECEIVED)


def event_of(raw: dict[str, JsonValue]) -> CanonicalEvent:
    """The first canonical event of one raw payload."""
    return events_of(raw)[0]


def records_of(events: Sequence[CanonicalEvent], first_offset: int = 0) -> list[LoggedRecord]:
    """The events as consecutive records of a one-partition log."""
    return [
        LoggedRecord(0, first_offset + n, event.key.encode(), encode_event(event), 0)
        for n, event in enumerate(events)
    ]


def fold_log(address: str, events: Sequence[CanonicalEvent]) -> tuple[CustomerState, list[Action]]:
    """Folds the events as one log with the batch core; the state of `address` and every action."""
    folder = BatchFold(_nothing, _nothing)
    folder.add_all(records_of(events))
    batch = folder.take()
    stored = batch.states.get(address)
    state = initial_state(address) if stored is None else decode_state(stored)
    return state, [placed.action for placed in batch.actions]


def run(address: str, *raws: Mapping[str, object]) -> tuple[CustomerState, list[Action]]:
    """Folds the events of these payloads that are keyed by `address`; returns the state and all actions."""
    events: list[CanonicalEvent] = []
    for raw in raws:
        json: dict[str, JsonValue] = orjson.loads(orjson.dumps(raw))
        events.extend(event for event in events_of(json) if event.key == address)
    return fold_log(address, events)


def _nothing(_key: str) -> bytes | None:
    return None
