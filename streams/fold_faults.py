"""A fault drill: `TAJO_FOLD_FAIL_EVENT_IDS` names events whose fold raises, to see dead letters at work.

Every runtime that folds (the embedded runner, the Faust worker, replays) takes its handlers from
`fold_handlers`: unset, they are the fold's own; set to a comma-separated list of event ids, each
handler first changes the state as usual and then raises `InjectedFoldFault` for those ids, the worst
case of a bug (a state half changed). The batch core sets such an event aside as a dead letter; once
the variable is unset again (the "fix"), `tajo-events dlq retry` folds it. For tests and drills only.
"""

from collections.abc import Mapping

from domain.events import FoldEvent
from domain.fold import HANDLERS, Actions, Handler
from domain.state import CustomerState
from schemas.event_types import EventType

FAULT_VARIABLE = "TAJO_FOLD_FAIL_EVENT_IDS"


class InjectedFoldFault(RuntimeError):
    """The fold of an event named in TAJO_FOLD_FAIL_EVENT_IDS."""


def fold_handlers(env: Mapping[str, str]) -> Mapping[EventType, Handler]:
    """The fold's handlers, made to fail on the event ids of TAJO_FOLD_FAIL_EVENT_IDS when it is set."""
    failing = frozenset(part.strip() for part in env.get(FAULT_VARIABLE, "").split(",") if part.strip())
    if not failing:
        return HANDLERS
    return {kind: _failing(handler, failing) for kind, handler in HANDLERS.items()}


def _failing(handler: Handler, failing: frozenset[str]) -> Handler:
    def fold(state: CustomerState, event: FoldEvent) -> Actions:
        actions = handler(state, event)
        if event.event_id in failing:
            raise InjectedFoldFault(f"{FAULT_VARIABLE} names event {event.event_id}")
        return actions

    return fold
