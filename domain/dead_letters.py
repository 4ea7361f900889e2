"""Dead letters: an event the fold could not apply, set aside with why, so the fold goes on.

A handler that raises (a bug, an event no handler expects) or a record the fold cannot decode must not
stop the fold: the batch core (`domain.batch`) catches the error, leaves the key's state as it was
before the event, marks the event's id in the state (`mark`), and hands the record over as a
`DeadLetter` for the runtime to keep beside the state, in the same commit. A later record with the
same id (a re-submission after a fix, `tajo-events dlq retry`, or Brevo's own retry) folds as any
event and clears the mark (`clear`). The rule reads only the log, so a replay marks the same events.
`dlq retry` puts the copy back marked `resubmitted` (`resubmitted_copy`): the fold takes a marked copy
only while the original's id is marked, so a replay in which the original folds (the fix is in the
code by then) drops the copy, however long after the original it came.
"""

from typing import NamedTuple

import orjson

from domain.events import UndecodableEvent, decode_fold_event
from domain.state import CustomerState

MAX_ERROR_CHARS = 500


class DeadLetter(NamedTuple):
    """A log record the fold set aside: where it sits, its bytes, whose it is (when known), and why."""

    partition: int
    offset: int
    value: bytes
    address: str | None
    event_id: str | None
    error_type: str
    error: str


def describe(error: BaseException) -> tuple[str, str]:
    """An error's type name and its message, cut to MAX_ERROR_CHARS."""
    message = str(error)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return type(error).__name__, message


def mark(state: CustomerState, event_id: str) -> None:
    """Records that one of the customer's events is dead-lettered (once per id)."""
    if event_id not in state.dead_letters:
        state.dead_letters = (*state.dead_letters, event_id)


def clear(state: CustomerState, event_id: str) -> None:
    """A dead-lettered event has now been folded: its mark goes."""
    state.dead_letters = tuple(kept for kept in state.dead_letters if kept != event_id)


def resubmitted_copy(value: bytes) -> bytes:
    """The record a dead-lettered event goes back to the log as, marked when it can be.

    A JSON object gets `"resubmitted": true`, so the fold takes it only while the original stands set
    aside; other bytes go back as they were.
    """
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if not isinstance(raw, dict):
        return value
    raw["resubmitted"] = True
    return orjson.dumps(raw)


def resubmission_key(value: bytes) -> bytes:
    """The log key a dead-lettered event goes back under: the key its event has (where its state lives)."""
    try:
        return decode_fold_event(value).key.encode()
    except UndecodableEvent:
        pass
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError:
        return b""
    address = raw.get("address") if isinstance(raw, dict) else None
    return address.encode() if isinstance(address, str) else b""
