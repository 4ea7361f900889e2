"""Actions: side effects the fold asks for, as data. Agents publish them; an effector carries them out."""

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class ActionKind(StrEnum):
    """What should happen because of an event."""

    MARKETING_ALERT = "marketing_alert"  # a spam report: the marketing team reviews
    ALTERNATIVE_CHANNEL = "alternative_channel"  # reach the customer on another channel
    SMS_HELP = "sms_help"  # send the help message by SMS (Brevo API)
    SMS_UNSUBSCRIBE = "sms_unsubscribe"  # blacklist the number for SMS (Brevo API)
    SUPPORT_MESSAGE = "support_message"  # an SMS reply for the support inbox
    LOYALTY_ENGAGEMENT = "loyalty_engagement"  # engagement with a loyalty campaign
    REWARDS_PAGE_VISIT = "rewards_page_visit"  # "Rewards Page Visited"


class Action(BaseModel):
    """One action, identified by its causing event and kind so it is carried out at most once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action_id: str
    kind: ActionKind
    address: str
    event_id: str
    at: int
    data: dict[str, str | int | None] = {}


def action_id(event_id: str, kind: ActionKind) -> str:
    """The same id every time the same event asks for the same kind of action."""
    return hashlib.blake2b(f"{event_id}:{kind.value}".encode(), digest_size=16).hexdigest()


def make_action(kind: ActionKind, address: str, event_id: str, at: int, **data: str | int | None) -> Action:
    """An action caused by one event."""
    return Action(
        action_id=action_id(event_id, kind), kind=kind, address=address, event_id=event_id, at=at, data=data
    )


def encode_action(action: Action) -> bytes:
    """The action as compact JSON bytes, as published on the actions topic."""
    return action.__pydantic_serializer__.to_json(action)


def decode_action(data: bytes) -> Action:
    """An action read back from the actions topic."""
    return Action.model_validate_json(data)
