"""Applying one log record to the table: decode, fold the right kind of state, encode. No I/O.

Faust agents and the embedded runner share this, so both fold exactly the same way.
"""

from collections.abc import Callable
from dataclasses import dataclass

from schemas.event import CAMPAIGN_KEY_PREFIX, CanonicalEvent, decode_event
from streams.actions import Action
from streams.campaign_fold import fold_campaign, initial_campaign
from streams.fold import initial_state, step
from streams.state import decode_campaign, decode_state, encode_campaign, encode_state


@dataclass(frozen=True, slots=True)
class Applied:
    """What one record changes: the key, its new encoded state (None when unchanged), the actions."""

    key: str
    state: bytes | None
    actions: tuple[Action, ...] = ()


def apply_event(lookup: Callable[[str], bytes | None], event: CanonicalEvent) -> Applied:
    """Folds one event into the state stored under its key (read through `lookup`)."""
    key = event.key
    stored = lookup(key)
    if key.startswith(CAMPAIGN_KEY_PREFIX):
        campaign = (
            decode_campaign(stored)
            if stored is not None
            else initial_campaign(key[len(CAMPAIGN_KEY_PREFIX) :])
        )
        folded_campaign = fold_campaign(campaign, event)
        return Applied(key, None if folded_campaign is campaign else encode_campaign(folded_campaign))
    if event.address is None:
        return Applied(key, None)  # unknown events without an address are kept in the log, not folded
    state = decode_state(stored) if stored is not None else initial_state(key)
    result = step(state, event)
    return Applied(key, None if result.state is state else encode_state(result.state), result.actions)


def apply_record(lookup: Callable[[str], bytes | None], value: bytes) -> Applied:
    """Decodes one log record and folds it."""
    return apply_event(lookup, decode_event(value))
