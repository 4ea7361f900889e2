"""Actions: side effects the fold asks for, as data. Agents publish them; an effector carries them out."""

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

import orjson
from pydantic import ConfigDict, TypeAdapter


class ActionKind(StrEnum):
    """What should happen because of an event."""

    MARKETING_ALERT = "marketing_alert"  # a spam report: the marketing team reviews
    ALTERNATIVE_CHANNEL = "alternative_channel"  # reach the customer on another channel
    SMS_HELP = "sms_help"  # send the help message by SMS (Brevo API)
    SMS_UNSUBSCRIBE = "sms_unsubscribe"  # blacklist the number for SMS (Brevo API)
    SUPPORT_MESSAGE = "support_message"  # an SMS reply for the support inbox
    LOYALTY_ENGAGEMENT = "loyalty_engagement"  # engagement with a loyalty campaign
    REWARDS_PAGE_VISIT = "rewards_page_visit"  # "Rewards Page Visited"


@dataclass(frozen=True, slots=True)
class Action:
    """One action, identified by its causing event and kind so it is carried out at most once.

    A frozen slotted dataclass, not a validated model: the fold makes one for every event that asks
    for something, so it must be cheap to make and to encode; what is read back is validated
    (`decode_action`).
    """

    __pydantic_config__ = ConfigDict(extra="forbid")

    action_id: str
    kind: ActionKind
    address: str
    event_id: str
    at: int
    data: dict[str, str | int | None] = field(default_factory=dict)


_ACTION = TypeAdapter(Action)


def action_id(event_id: str, kind: ActionKind) -> str:
    """The same id every time the same event asks for the same kind of action."""
    return hashlib.blake2b(f"{event_id}:{kind.value}".encode(), digest_size=16).hexdigest()


def make_action(kind: ActionKind, address: str, event_id: str, at: int, **data: str | int | None) -> Action:
    """An action caused by one event."""
    return Action(action_id(event_id, kind), kind, address, event_id, at, data)


def encode_action(action: Action) -> bytes:
    """The action as compact JSON bytes, as published on the actions topic: `orjson.dumps(action)`.

    Its fields gathered into a dict first serialize twice as fast as the dataclass itself.
    """
    return orjson.dumps(
        {
            "action_id": action.action_id,
            "kind": action.kind,
            "address": action.address,
            "event_id": action.event_id,
            "at": action.at,
            "data": action.data,
        }
    )


def decode_action(data: bytes) -> Action:
    """An action read back from the actions topic, validated."""
    return _ACTION.validate_json(data)
