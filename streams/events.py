"""The event as the fold reads it: a canonical event decoded once from the log, its time in epoch ms.

Decoding a log record for the fold is on the hot path of every runtime, so it reads the JSON the
ingester wrote (already validated against `CanonicalEvent`) with orjson into a slotted record
instead of re-validating the whole model, and keeps the event time as integer milliseconds.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import orjson
from pydantic import JsonValue

from schemas.event import CAMPAIGN_KEY_PREFIX, SCHEMA_VERSION, CanonicalEvent, epoch_ms
from schemas.event_types import EventType

Payload = dict[str, JsonValue]


class UndecodableEvent(ValueError):
    """A log record that is not a canonical event this fold can read."""


@dataclass(frozen=True, slots=True)
class FoldEvent:
    """What the fold needs of a canonical event."""

    event_id: str
    type: EventType
    address: str | None
    campaign: str | None
    at: int  # occurred_at, epoch milliseconds
    payload: Payload

    @property
    def key(self) -> str:
        """The partition key, as `CanonicalEvent.key` has it."""
        if self.address is not None:
            return self.address
        if self.campaign is not None and self.type.value.startswith("campaign."):
            return CAMPAIGN_KEY_PREFIX + self.campaign
        return self.event_id

    @classmethod
    def of(cls, event: CanonicalEvent) -> "FoldEvent":
        """The fold's view of a canonical event."""
        return cls(
            event.event_id,
            event.type,
            event.address,
            event.campaign,
            epoch_ms(event.occurred_at),
            event.payload,
        )


def decode_fold_event(data: bytes) -> FoldEvent:
    """A log record's event, as the fold reads it."""
    try:
        raw = orjson.loads(data)
        if raw.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise UndecodableEvent(f"unknown schema_version {raw.get('schema_version')!r}")
        return FoldEvent(
            event_id=raw["event_id"],
            type=EventType(raw["type"]),
            address=raw.get("address"),
            campaign=raw.get("campaign"),
            at=epoch_ms(datetime.fromisoformat(raw["occurred_at"])),
            payload=cast(Payload, raw["payload"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, UndecodableEvent):
            raise
        raise UndecodableEvent(f"not a canonical event: {error!r}") from error
