"""The event as the fold reads it: a canonical event decoded once from the log, its time in epoch ms.

Decoding a log record for the fold is on the hot path of every runtime, so it reads the JSON the
ingester wrote (already validated against `CanonicalEvent`) with orjson into a light record
instead of re-validating the whole model, and keeps the event time as integer milliseconds.
A record of an older schema version is upcast first (`schemas.upcast`). The fold reads the typed
fields only: the raw Brevo body stays in the log and never reaches it.
"""

from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from schemas.event import SCHEMA_VERSION, CanonicalEvent, epoch_ms, partition_key
from schemas.event_types import EventType
from schemas.upcast import UnknownSchemaVersion, upcast

_TYPES: dict[str, EventType] = {member.value: member for member in EventType}


class UndecodableEvent(ValueError):
    """A log record that is not a canonical event this fold can read."""


class FoldEvent(NamedTuple):
    """What the fold needs of a canonical event (immutable; a tuple, so it is cheap to make)."""

    event_id: str
    type: EventType
    address: str | None
    campaign: str | None
    at: int  # occurred_at, epoch milliseconds
    campaign_name: str | None = None
    tags: tuple[str, ...] = ()
    link: str | None = None
    reason: str | None = None
    text: str | None = None
    email: str | None = None
    phone: str | None = None
    list_ids: tuple[int, ...] = ()
    email_blacklisted: bool | None = None
    resubmitted: bool = False  # put back by `dlq retry`: folded only while the original is set aside

    @property
    def key(self) -> str:
        """The partition key, as `CanonicalEvent.key` has it."""
        return partition_key(self.address, self.campaign, self.type, self.event_id)

    @classmethod
    def of(cls, event: CanonicalEvent) -> "FoldEvent":
        """The fold's view of a canonical event."""
        return cls(
            event.event_id,
            event.type,
            event.address,
            event.campaign,
            epoch_ms(event.occurred_at),
            event.campaign_name,
            event.tags,
            event.link,
            event.reason,
            event.text,
            event.email,
            event.phone,
            event.list_ids,
            event.email_blacklisted,
            event.resubmitted,
        )


_new_event = tuple.__new__  # FoldEvent's fields, in order, without the keyword-handling constructor
_from_iso = datetime.fromisoformat
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def decode_fold_event(data: bytes) -> FoldEvent:
    """A log record's event, as the fold reads it."""
    try:
        raw = orjson.loads(data)
        if raw.get("schema_version") != SCHEMA_VERSION:
            raw = upcast(raw)
        kind = _TYPES.get(raw["type"])
        if kind is None:
            raise ValueError(f"{raw['type']!r} is not a valid EventType")
        # epoch_ms(occurred_at), from the timedelta's parts: days, 0 <= seconds < 86400, 0 <= µs < 10**6
        since = _from_iso(raw["occurred_at"]) - _EPOCH
        return _new_event(
            FoldEvent,
            (
                raw["event_id"],
                kind,
                raw.get("address"),
                raw.get("campaign"),
                since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000,
                raw.get("campaign_name"),
                tuple(raw.get("tags", ())),
                raw.get("link"),
                raw.get("reason"),
                raw.get("text"),
                raw.get("email"),
                raw.get("phone"),
                tuple(raw.get("list_ids", ())),
                raw.get("email_blacklisted"),
                raw.get("resubmitted") is True,
            ),
        )
    except UnknownSchemaVersion as error:
        raise UndecodableEvent(str(error)) from error
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as error:
        if isinstance(error, UndecodableEvent):
            raise
        raise UndecodableEvent(f"not a canonical event: {error!r}") from error
